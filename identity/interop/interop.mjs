// Checks consentnet consent credentials with an independent W3C implementation
// (Digital Bazaar's vc, data-integrity and eddsa-rdfc-2022 cryptosuite), offline.
//
//   node interop.mjs verify FILE|-   verify a credential; prints {"verified":..} and exits 0 or 1
//   node interop.mjs issue           sign a sample consent with this implementation; prints it
//   node interop.mjs issue-generic   sign a credential that is not a consent (VC 2.0 terms
//                                    only), valid from now for a day; prints it
//   node interop.mjs verify-status FILE LIST
//                                    verify a consent and its revocation status with the
//                                    Bitstring Status List library, LIST being the bank's
//                                    status list credential as fetched (its issuer must be
//                                    the consent's bank); prints {"verified":..,"revoked":..}
import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {contexts as credentialContexts} from '@digitalbazaar/credentials-context';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';

const CONSENT_CONTEXT = 'https://ns.consentnet.org/consent/v1';
const MULTIKEY_CONTEXT = 'https://w3id.org/security/multikey/v1';
const DID_CONTEXT = 'https://www.w3.org/ns/did/v1';
const here = fileURLToPath(new URL('.', import.meta.url));
const readJson = path => JSON.parse(readFileSync(path, 'utf8'));

const contexts = new Map(credentialContexts);
contexts.set(CONSENT_CONTEXT, readJson(`${here}../contexts/consent-v1.jsonld`));
contexts.set(MULTIKEY_CONTEXT, readJson(
  `${here}node_modules/@digitalbazaar/multikey-context/contexts/multikey-v1.jsonld`));

// Resolves did:key DIDs and their key ids locally: the DID is the key.
function didKeyDocument(url) {
  const [did] = url.split('#');
  const fingerprint = did.slice('did:key:'.length);
  const method = {
    '@context': MULTIKEY_CONTEXT,
    id: `${did}#${fingerprint}`,
    type: 'Multikey',
    controller: did,
    publicKeyMultibase: fingerprint
  };
  if(url.includes('#')) {
    return method;
  }
  return {
    '@context': [DID_CONTEXT, MULTIKEY_CONTEXT],
    id: did,
    verificationMethod: [method],
    assertionMethod: [method.id],
    authentication: [method.id]
  };
}

// Offline only: anything not bundled here is an error, never a fetch.
async function documentLoader(url) {
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url, document: contexts.get(url)};
  }
  if(url.startsWith('did:key:z6Mk')) {
    return {contextUrl: null, documentUrl: url, document: didKeyDocument(url)};
  }
  throw new Error(`document not available offline: ${url}`);
}

async function verify(path) {
  const text = readFileSync(path === '-' ? 0 : path, 'utf8');
  const credential = JSON.parse(text);
  const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
  const result = await vc.verifyCredential({credential, suite, documentLoader});
  const error = result.error ?
    (result.error.errors || [result.error]).map(e => e.message).join('; ') : undefined;
  console.log(JSON.stringify({verified: result.verified, error}));
  process.exit(result.verified ? 0 : 1);
}

async function issue() {
  // A fixed seed, so the fixture's issuer is stable across regenerations.
  const seed = new Uint8Array(32).fill(7);
  const probe = await Ed25519Multikey.generate({seed});
  const did = `did:key:${probe.publicKeyMultibase}`;
  const key = await Ed25519Multikey.generate({seed, controller: did});
  const credential = {
    '@context': ['https://www.w3.org/ns/credentials/v2', CONSENT_CONTEXT],
    id: 'urn:uuid:4f6c2b1e-8a3d-4c5e-9f70-112233445566',
    type: ['VerifiableCredential', 'OpenBankingConsent'],
    issuer: did,
    validFrom: '2026-11-01T09:00:00Z',
    validUntil: '2036-11-01T09:00:00Z',
    credentialSubject: {
      id: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
      bank: 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG',
      accounts: ['acc-7f3a9c'],
      permissions: ['ReadAccountsDetail', 'ReadBalances'],
      purpose: 'Interoperability fixture signed by an independent implementation'
    }
  };
  const suite = new DataIntegrityProof({signer: key.signer(), cryptosuite: eddsaRdfc2022});
  const signed = await vc.issue({credential, suite, documentLoader});
  console.log(JSON.stringify(signed, null, 2));
}

async function issueGeneric() {
  const seed = new Uint8Array(32).fill(9);
  const probe = await Ed25519Multikey.generate({seed});
  const did = `did:key:${probe.publicKeyMultibase}`;
  const key = await Ed25519Multikey.generate({seed, controller: did});
  const now = Date.now();
  const credential = {
    '@context': ['https://www.w3.org/ns/credentials/v2'],
    id: `urn:uuid:${crypto.randomUUID()}`,
    type: ['VerifiableCredential'],
    name: 'A credential issued by an independent implementation',
    issuer: did,
    validFrom: new Date(now - 60_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    validUntil: new Date(now + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    credentialSubject: {id: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', description: 'a subject'}
  };
  const suite = new DataIntegrityProof({signer: key.signer(), cryptosuite: eddsaRdfc2022});
  console.log(JSON.stringify(await vc.issue({credential, suite, documentLoader})));
}

async function verifyStatus(path, listPath) {
  const credential = readJson(path);
  const list = readJson(listPath);
  const url = credential.credentialStatus?.statusListCredential;
  const loader = async target => target === url ?
    {contextUrl: null, documentUrl: target, document: list} : documentLoader(target);
  const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
  // The consent is the client's; its status list is its bank's, named in the consent.
  const bankIssued = list.issuer === credential.credentialSubject?.bank;
  const result = await vc.verifyCredential({
    credential, suite, documentLoader: loader,
    checkStatus: options => checkStatus({...options, verifyMatchingIssuers: false})
  });
  const error = result.error ?
    (result.error.errors || [result.error]).map(e => e.message).join('; ') : undefined;
  const revoked = result.statusResult?.status ?? result.statusResult?.results?.[0]?.status;
  console.log(JSON.stringify({verified: result.verified && bankIssued, revoked, bankIssued, error}));
  process.exit(result.verified && bankIssued ? 0 : 1);
}

const [command, argument, second] = process.argv.slice(2);
if(command === 'verify' && argument) {
  await verify(argument);
} else if(command === 'issue') {
  await issue();
} else if(command === 'issue-generic') {
  await issueGeneric();
} else if(command === 'verify-status' && argument && second) {
  await verifyStatus(argument, second);
} else {
  console.error('usage: node interop.mjs verify FILE|- | node interop.mjs issue | node interop.mjs issue-generic');
  process.exit(2);
}
