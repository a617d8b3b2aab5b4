//! Network paths between test nodes as loopback TCP relays, which a fault test cuts and heals: a partition without touching the nodes.

use crate::Consortium;

/// A TCP relay on loopback standing for the network path from one node to another: the
/// dialing node is given the relay's address, and cutting the relay cuts that path
/// (open connections are shut, new ones refused) until it is healed.
pub struct Path {
    /// The port dialers use.
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    open: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Path {
    /// Relays connections on a free port to `127.0.0.1:target`.
    pub fn to(target: u16) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let open = std::sync::Arc::new(std::sync::Mutex::new(Vec::<std::net::TcpStream>::new()));
        let (cut_flag, open_list) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming() {
                let Ok(inbound) = inbound else { continue };
                if cut_flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let Ok(outbound) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let streams = [&inbound, &outbound].map(|s| s.try_clone());
                if let [Ok(a), Ok(b)] = streams {
                    let mut list = open_list.lock().unwrap_or_else(|e| e.into_inner());
                    list.push(a);
                    list.push(b);
                }
                let (mut in_read, mut out_write) = (
                    inbound.try_clone().expect("clone"),
                    outbound.try_clone().expect("clone"),
                );
                let (mut out_read, mut in_write) = (outbound, inbound);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut in_read, &mut out_write);
                    let _ = out_write.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut out_read, &mut in_write);
                    let _ = in_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { port, cut, open }
    }

    /// Cuts the path: open connections are shut and new ones refused.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for stream in open.drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Heals the path: new connections go through again.
    pub fn heal(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A consortium whose nodes reach each other only through [`Path`]s, one per ordered
/// pair, so a test can cut any node off and heal it.
pub struct Paths {
    /// `paths[from][to]`: the path `from` dials `to` through (`None` on the diagonal).
    pub paths: Vec<Vec<Option<Path>>>,
}

impl Paths {
    /// One path per ordered pair of the consortium's nodes.
    pub fn between(consortium: &Consortium) -> Self {
        let nodes = &consortium.nodes;
        let paths = (0..nodes.len())
            .map(|from| {
                (0..nodes.len())
                    .map(|to| (from != to).then(|| Path::to(nodes[to].p2p_port)))
                    .collect()
            })
            .collect();
        Self { paths }
    }

    /// The addresses node `from` dials the others at.
    pub fn bootstrap_for(&self, consortium: &Consortium, from: usize) -> Vec<String> {
        consortium
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(to, node)| {
                let path = self.paths[from][to].as_ref()?;
                Some(format!(
                    "/ip4/127.0.0.1/tcp/{}/p2p/{}",
                    path.port,
                    node.peer_id()
                ))
            })
            .collect()
    }

    /// Cuts every path to and from `node`.
    pub fn isolate(&self, node: usize) {
        self.each_of(node, Path::cut);
    }

    /// Heals every path to and from `node`.
    pub fn rejoin(&self, node: usize) {
        self.each_of(node, Path::heal);
    }

    fn each_of(&self, node: usize, action: fn(&Path)) {
        for (from, row) in self.paths.iter().enumerate() {
            for (to, path) in row.iter().enumerate() {
                if let Some(path) = path
                    && (from == node || to == node)
                {
                    action(path);
                }
            }
        }
    }
}
