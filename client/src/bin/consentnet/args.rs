//! The `consentnet` command line's arguments: every command and its options, as clap parses them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The consentnet command line.
///
/// Exit codes: 0 success, 2 usage error, 3 refused by the node, 4 the audit found
/// problems, 1 any other failure.
/// Wallet passphrases come from CONSENTNET_WALLET_PASSPHRASE; a bank's node key
/// passphrase from CONSENTNET_NODE_PASSPHRASE.
#[derive(Debug, Parser)]
#[command(name = "consentnet", version, about, long_about)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// A CA certificate (PEM) to trust for nodes' HTTPS besides the public roots, e.g. a
    /// demo consortium's or a node's own `tls/ca.pem`.
    #[arg(long, global = true, env = "CONSENTNET_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole journey on a six-member consortium of real node processes started on
    /// this machine: apps published and approved, consents at three banks (two behind
    /// bank cores plugged in at run time), an affordability summary through the unified
    /// API, a revocation, replication and the regulator's audit. `--json` prints every
    /// step's outcome.
    Demo(DemoArgs),
    /// Show a node's status: version, peers and log size.
    Status(StatusArgs),
    /// Browse a bank's app catalog: every published app version with the bank's decision
    /// on it (approved with which operations, suspended, or not yet decided).
    Catalog(CatalogArgs),
    /// The bank client's wallet of DIDs and consents (encrypted).
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Grant, revoke and look up consents.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// A TSP's app: publish versions, call banks' unified API.
    #[command(subcommand)]
    Tsp(TspCommand),
    /// A bank's decisions about apps.
    #[command(subcommand)]
    Bank(BankCommand),
    /// The regulator's audit of the whole log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the log (every entry and event vouched for by its signer's key, every hash
    /// link, credential and event), and every
    /// access a bank served against the consent's state at that moment. Online through a
    /// node's operator API (--operator), or offline on a stopped node's log folder (--data-dir), with no
    /// network. Exit code 4 when something was found.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct AuditSource {
    /// A node's operator HTTP API: the node audits its copy of the log.
    #[arg(long)]
    pub operator: Option<String>,
    /// A stopped node's log folder (its `data` folder), audited here.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Html,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ProgressArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct WalletArg {
    /// The wallet file.
    #[arg(long, env = "CONSENTNET_WALLET")]
    pub wallet: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct NodeArg {
    /// The node's public HTTP API.
    #[arg(long, env = "CONSENTNET_NODE", default_value = "http://127.0.0.1:8080")]
    pub node: String,
}

#[derive(Debug, clap::Args)]
pub struct OperatorArg {
    /// The node's operator HTTP API (status, audit, admin; on the node's machine).
    #[arg(
        long,
        env = "CONSENTNET_OPERATOR",
        default_value = "http://127.0.0.1:8081"
    )]
    pub operator: String,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create an empty wallet.
    Init(WalletArg),
    /// Add a DID (use one per relationship: banks and apps cannot then link you).
    NewDid(WalletNewDidArgs),
    /// List the wallet's DIDs and consents.
    List(WalletArg),
    /// Link a wallet DID to your accounts at a bank, with the one-time code the bank gave
    /// you (in its app or online banking). The bank keeps the link privately and answers
    /// with the opaque references of your accounts, to name in consents.
    Link(WalletLinkArgs),
    /// Approve an app's OAuth request shown on a bank's consent screen: the wallet signs
    /// a consent for exactly what is shown (or less: fewer accounts) and sends it to the bank.
    Approve(WalletApproveArgs),
    /// Sign in to a node's portal: sign the one-time challenge its sign-in page shows;
    /// the browser showing it is then signed in as that DID.
    SignIn(WalletSignInArgs),
    /// Print a DID's private key as a JWK (RFC 8037), for an OAuth client library that
    /// signs as an app with it. The key is a secret: keep the output out of files and logs.
    ExportJwk(WalletNewDidArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Sign a consent for an app at a bank and submit it to that bank's node (`--node`),
    /// which admits it once the signing DID is linked there as the accounts' holder.
    Grant(ConsentGrantArgs),
    /// Revoke a consent held in the wallet.
    Revoke(ConsentRevokeArgs),
    /// A consent's status.
    Status(ConsentStatusArgs),
    /// The consents in the wallet, with their status on the node.
    List(ConsentListArgs),
    /// The access records banks made under a consent: every call served or refused.
    Accesses(ConsentAccessesArgs),
    /// Verify a credential or a presentation from a file through a node's W3C VC-API,
    /// as anyone outside the network can: proof, validity and revocation status. Exit
    /// code 4 when it does not verify.
    Verify(ConsentVerifyArgs),
}

#[derive(Debug, Subcommand)]
pub enum TspCommand {
    /// Publish a version of an app, signed by the app's DID (a wallet DID).
    Publish(TspPublishArgs),
    /// GET a path of a bank's unified API with a consent; the CLI signs the proof.
    Get(TspGetArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// Put a mapping file's bank core in service. The node checks the file and dry-runs
    /// it against the core first; a failed dry run installs nothing unless --force.
    Put(ConnectorPutArgs),
    /// Dry-run a mapping file against its core from the bank node, without installing
    /// it: each operation over an unknown and a sample account, with a report.
    Test(ConnectorPutArgs),
    /// Remove every mapped core: the embedded sandbox bank comes back.
    Remove(ConnectorRemoveArgs),
}

#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Change the bank core behind a bank node at run time.
    #[command(subcommand)]
    Connector(ConnectorCommand),
    /// Issue a one-time code that links a client's DID to a customer's accounts (what the
    /// bank's own app shows a customer who signed in there). Valid for 15 minutes.
    LinkCode(BankLinkCodeArgs),
    /// Approve an app version with the permissions it may use here, or suspend it.
    Decide(BankDecideArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Leave the consortium running at the end and print how to stop it.
    #[arg(long)]
    pub keep: bool,
    /// An empty folder for the members' data (default: a temp folder, removed at the
    /// end unless --keep).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Where consentnet-node and consentnet-bankcore are (default: next to this
    /// program).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub operator: OperatorArg,
}

#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    pub node: NodeArg,
    /// The bank's DID.
    #[arg(long)]
    pub bank: String,
    /// Show approved versions only.
    #[arg(long)]
    pub approved: bool,
}

#[derive(Debug, clap::Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub source: AuditSource,
    /// The genesis file for --data-dir (default: genesis.json beside the folder).
    #[arg(long, requires = "data_dir")]
    pub genesis: Option<PathBuf>,
    /// How long after a revocation an access still counts as in time (ms).
    #[arg(long, default_value_t = 1_000)]
    pub propagation_bound_ms: u64,
    /// text (a summary), json (the whole report) or html (a page with charts).
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw a progress bar on stderr (offline audits): auto = when stderr is a
    /// terminal.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
}

#[derive(Debug, clap::Args)]
pub struct WalletNewDidArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    /// A label for it.
    #[arg(long)]
    pub label: String,
}

#[derive(Debug, clap::Args)]
pub struct WalletLinkArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    /// The bank node's HTTP API.
    #[arg(long)]
    pub bank: String,
    /// The wallet DID to link (its label); use a separate DID per bank.
    #[arg(long = "as")]
    pub label: String,
    /// The link code from the bank.
    #[arg(long)]
    pub code: String,
}

#[derive(Debug, clap::Args)]
pub struct WalletApproveArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    /// The request id from the consent screen.
    pub request: String,
    /// The bank node's HTTP API (the consent screen's address).
    #[arg(long)]
    pub bank: String,
    /// The wallet DID that signs (its label). Default: the DID linked at that bank.
    #[arg(long = "as")]
    pub label: Option<String>,
    /// An account to grant (repeat for several). Default: the accounts the app named,
    /// or else every account linked at that bank.
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct WalletSignInArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    /// The challenge from the sign-in page.
    pub challenge: String,
    /// The node's HTTP API (the sign-in page's address).
    #[arg(long)]
    pub node: String,
    /// The wallet DID to sign in as (its label). Default: the DID linked at that bank.
    #[arg(long = "as")]
    pub label: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConsentGrantArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    #[command(flatten)]
    pub node: NodeArg,
    /// The wallet DID that grants (its label).
    #[arg(long = "as")]
    pub label: String,
    /// The bank's DID.
    #[arg(long)]
    pub bank: String,
    /// The app's DID.
    #[arg(long)]
    pub app: String,
    /// An account reference at the bank (repeat for several).
    #[arg(long = "account", required = true)]
    pub accounts: Vec<String>,
    /// An OBIE permission code (repeat for several).
    #[arg(long = "permission", required = true)]
    pub permissions: Vec<String>,
    /// Last day the consent may be used (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub until: chrono::NaiveDate,
    /// Why, in words the client understands.
    #[arg(long, default_value = "Account information")]
    pub purpose: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConsentRevokeArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    #[command(flatten)]
    pub node: NodeArg,
    /// The consent id.
    pub consent: String,
}

#[derive(Debug, clap::Args)]
pub struct ConsentStatusArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    #[command(flatten)]
    pub node: NodeArg,
    /// The consent id.
    pub consent: String,
}

#[derive(Debug, clap::Args)]
pub struct ConsentVerifyArgs {
    #[command(flatten)]
    pub node: NodeArg,
    /// The credential or presentation (JSON), e.g. a consent the wallet holds.
    pub file: std::path::PathBuf,
    /// The challenge a presentation must be signed with.
    #[arg(long)]
    pub challenge: Option<String>,
    /// The domain a presentation must be signed for.
    #[arg(long)]
    pub domain: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConsentListArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    #[command(flatten)]
    pub node: NodeArg,
}

#[derive(Debug, clap::Args)]
pub struct ConsentAccessesArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    #[command(flatten)]
    pub node: NodeArg,
    /// The consent id.
    pub consent: String,
}

#[derive(Debug, clap::Args)]
pub struct TspPublishArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    /// The operator surface of the member node that publishes the manifest (the TSP's
    /// own node, or the node of a member that vouches for the app).
    #[command(flatten)]
    pub operator: OperatorArg,
    /// The file holding that node's admin token (needed when its operator listener is
    /// not on loopback).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The app's DID (its wallet label).
    #[arg(long = "as")]
    pub label: String,
    /// App name.
    #[arg(long)]
    pub name: String,
    /// What it does.
    #[arg(long)]
    pub description: String,
    /// Version.
    #[arg(long)]
    pub version: String,
    /// web or mobile.
    #[arg(long, default_value = "web")]
    pub platform: String,
    /// A redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A permission the app asks for (repeat).
    #[arg(long = "permission", required = true)]
    pub permissions: Vec<String>,
    /// SHA-256 of the app bundle (64 hex digits), for an app that does not run in
    /// banks' portals.
    #[arg(long, required_unless_present = "bundle", conflicts_with = "bundle")]
    pub bundle_hash: Option<String>,
    /// A folder of the app's web files (with `index.html`) to run in banks' portals as
    /// a mini-app: each file is uploaded to the node, and the SDK is added as
    /// `consentnet-miniapp.js` unless the folder has one.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// A network origin the mini-app asks to reach itself, e.g. https://api.example.com
    /// (repeat; banks decide).
    #[arg(long = "origin", requires = "bundle")]
    pub origins: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct TspGetArgs {
    #[command(flatten)]
    pub wallet: WalletArg,
    /// The bank node's HTTP API.
    #[arg(long)]
    pub bank: String,
    /// The app's DID (its wallet label).
    #[arg(long = "as")]
    pub label: String,
    /// The app version making the call.
    #[arg(long)]
    pub app_version: String,
    /// The consent id.
    #[arg(long)]
    pub consent: String,
    /// The path under /open-banking/v4.0, e.g. /aisp/accounts.
    pub path: String,
}

#[derive(Debug, clap::Args)]
pub struct ConnectorPutArgs {
    #[command(flatten)]
    pub operator: OperatorArg,
    /// The file holding the node's admin token.
    #[arg(long)]
    pub token_file: PathBuf,
    /// The mapping file (TOML).
    pub mapping: PathBuf,
    /// An account the core holds, so the dry run also reads an account, its balances
    /// and transactions.
    #[arg(long)]
    pub account: Option<String>,
    /// Install even if the dry run fails (put only).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConnectorRemoveArgs {
    #[command(flatten)]
    pub operator: OperatorArg,
    /// The file holding the node's admin token.
    #[arg(long)]
    pub token_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BankLinkCodeArgs {
    #[command(flatten)]
    pub operator: OperatorArg,
    /// The file holding the node's admin token.
    #[arg(long)]
    pub token_file: PathBuf,
    /// The bank's own identifier for the customer.
    #[arg(long)]
    pub customer: String,
    /// An account reference of the customer (repeat for several).
    #[arg(long = "account", required = true)]
    pub accounts: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct BankDecideArgs {
    #[command(flatten)]
    pub node: NodeArg,
    /// The bank node's key file (node-key.json).
    #[arg(long)]
    pub key_file: PathBuf,
    /// The app's DID.
    #[arg(long)]
    pub app: String,
    /// The app version.
    #[arg(long)]
    pub version: String,
    /// A permission the app may use at this bank (repeat).
    #[arg(long = "permission", conflicts_with = "suspend")]
    pub permissions: Vec<String>,
    /// Suspend the version instead.
    #[arg(long)]
    pub suspend: bool,
    /// The app's rate at this bank, in unified API calls per second (default: the node's
    /// `limits.per_app_per_second`).
    #[arg(long, requires = "burst", conflicts_with = "suspend")]
    pub rate: Option<u32>,
    /// The burst the app may make above its rate.
    #[arg(long, requires = "rate")]
    pub burst: Option<u32>,
}
