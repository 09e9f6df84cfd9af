//! The all-reduce between processes (machines) of a data-parallel training: every process
//! (node) keeps one websocket connection to the orchestrator (`next orchestrator`), sends its
//! tensor and gets the sum over the nodes back, summed in node order. The transport is Burn's
//! (`burn-communication`'s websocket server and client).
//!
//! Why not burn-collective's own global all-reduce: in 0.21.0 it completes once per process
//! and the second call never returns. Every global strategy ends with a barrier
//! (`SyncService::sync`, burn-collective src/global/node/sync.rs) whose "all nodes have
//! synced" branch clears a copy of the list of synced peers
//! (`self.syncing_peers.lock().unwrap().to_vec()` ... `syncing_peers.clear()`), so from the
//! second barrier on the list holds each node twice and never equals the node list again.
//! `cargo run -p next-train --example global_all_reduce` reproduces it. Devices inside one
//! process still use burn-collective (see [`crate::distributed`]).
//!
//! A node whose connection drops (killed, crashed) fails the calls of every other node at
//! once with an error naming it; a node that stops answering makes the others' calls time out.

use burn_communication::websocket::{WsClient, WsClientChannel, WsServer, WsServerChannel};
use burn_communication::{Address, CommunicationChannel, Message, ProtocolClient, ProtocolServer};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The route the nodes connect to.
const ROUTE: &str = "reduce";

/// Message kinds (first byte of every message).
const JOIN: u8 = 0;
const REDUCE: u8 = 1;
const LEAVE: u8 = 2;
const READY: u8 = 3;
const ERROR: u8 = 4;

/// Serve the orchestrator on `port` (all interfaces) until the process stops: one training
/// (set of nodes) at a time; when every node of a training has left or failed, the next may
/// join.
pub async fn serve(port: u16) -> Result<(), String> {
    let hub = Arc::new(Hub::default());
    WsServer::new(port)
        .route(ROUTE, move |channel: WsServerChannel| {
            let hub = hub.clone();
            async move { hub.serve_node(channel).await }
        })
        .serve(std::future::pending::<()>())
        .await
        .map_err(|e| format!("serving on port {port}: {e:?}"))
}

/// A value every node waits for: the training starting, or the sum of one all-reduce.
type Waiter<T> = oneshot::Sender<Result<T, String>>;

/// The nodes of the current training and the all-reduce in progress.
#[derive(Default)]
struct Session {
    /// Number of nodes, set by the first to join.
    nodes: usize,
    /// Connections of this session still open.
    connected: usize,
    /// Ranks that have joined.
    joined: Vec<usize>,
    /// Nodes waiting for all to join.
    ready: Vec<Waiter<()>>,
    /// Index of the all-reduce in progress.
    call: u64,
    /// This all-reduce's tensors by rank.
    parts: BTreeMap<usize, Vec<f32>>,
    /// Nodes waiting for this all-reduce's sum.
    sums: Vec<Waiter<Arc<Vec<f32>>>>,
    /// Why the session failed (every later call of its nodes gets this error).
    failed: Option<String>,
}

impl Session {
    /// Fail every waiting node (and later calls) with `why`.
    fn fail(&mut self, why: String) {
        for w in self.ready.drain(..) {
            let _ = w.send(Err(why.clone()));
        }
        for w in self.sums.drain(..) {
            let _ = w.send(Err(why.clone()));
        }
        self.parts.clear();
        self.failed.get_or_insert(why);
    }

    /// Add node `rank` to the training of `nodes` nodes; the receiver fires when all are in.
    fn join(
        &mut self,
        rank: usize,
        nodes: usize,
    ) -> Result<oneshot::Receiver<Result<(), String>>, String> {
        if self.connected == 0 {
            *self = Session {
                nodes,
                ..Session::default()
            };
        }
        if nodes != self.nodes {
            return Err(format!(
                "node {rank} says --world-size {nodes}, the training being joined has {}",
                self.nodes
            ));
        }
        if rank >= nodes || self.joined.contains(&rank) {
            return Err(format!(
                "rank {rank} is out of 0..{nodes} or already joined (a previous training's \
                 node still connected?)"
            ));
        }
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        self.connected += 1;
        self.joined.push(rank);
        let (tx, rx) = oneshot::channel();
        self.ready.push(tx);
        if self.joined.len() == nodes {
            for w in self.ready.drain(..) {
                let _ = w.send(Ok(()));
            }
        }
        Ok(rx)
    }

    /// Node `rank`'s tensor of all-reduce `call`; the receiver fires with the sum.
    fn contribute(
        &mut self,
        rank: usize,
        call: u64,
        values: Vec<f32>,
    ) -> oneshot::Receiver<Result<Arc<Vec<f32>>, String>> {
        let (tx, rx) = oneshot::channel();
        if let Some(why) = &self.failed {
            let _ = tx.send(Err(why.clone()));
            return rx;
        }
        let other_len = self.parts.values().next().map(Vec::len);
        if call != self.call || other_len.is_some_and(|n| n != values.len()) {
            let _ = tx.send(Err(String::new()));
            self.fail(format!(
                "node {rank} sent all-reduce #{call} of {} values while the others are at #{} \
                 with {other_len:?} values: the nodes run different trainings",
                values.len(),
                self.call
            ));
            return rx;
        }
        self.parts.insert(rank, values);
        self.sums.push(tx);
        if self.parts.len() == self.nodes {
            let mut parts = std::mem::take(&mut self.parts).into_values();
            let mut sum = parts.next().unwrap_or_default();
            for part in parts {
                for (s, v) in sum.iter_mut().zip(part) {
                    *s += v;
                }
            }
            let sum = Arc::new(sum);
            for w in self.sums.drain(..) {
                let _ = w.send(Ok(sum.clone()));
            }
            self.call += 1;
        }
        rx
    }
}

/// The orchestrator's state (one session at a time).
#[derive(Default)]
struct Hub {
    session: Mutex<Session>,
}

/// Marks its node's connection closed when dropped (also when the handler panics).
struct Connection<'a> {
    hub: &'a Hub,
    rank: usize,
    left: bool,
}

impl Drop for Connection<'_> {
    fn drop(&mut self) {
        let mut s = self.hub.lock();
        if !self.left {
            s.fail(format!(
                "node {} lost its connection to the orchestrator (killed or crashed?)",
                self.rank
            ));
        }
        s.connected = s.connected.saturating_sub(1);
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One node's connection: join, then answer its all-reduces until it leaves.
    async fn serve_node(&self, mut channel: WsServerChannel) {
        let Ok(Some(first)) = channel.recv().await else {
            return;
        };
        let (rank, nodes) = match decode_join(&first.data) {
            Some(join) => join,
            None => return send_error(&mut channel, "expected a join message".into()).await,
        };
        let joined = self.lock().join(rank, nodes);
        let ready = match joined {
            Ok(rx) => rx,
            Err(why) => return send_error(&mut channel, why).await,
        };
        let mut connection = Connection {
            hub: self,
            rank,
            left: false,
        };
        if let Err(why) = wait(&mut channel, ready).await {
            return send_error(&mut channel, why).await;
        }
        if channel
            .send(Message::new(vec![READY].into()))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let message = match channel.recv().await {
                Ok(Some(m)) => m,
                _ => return,
            };
            match message.data.first() {
                Some(&LEAVE) => {
                    connection.left = true;
                    return;
                }
                Some(&REDUCE) => {}
                _ => return send_error(&mut channel, "unexpected message".into()).await,
            }
            let Some((call, values)) = decode_tensor(&message.data) else {
                return send_error(&mut channel, "malformed all-reduce message".into()).await;
            };
            let sum = self.lock().contribute(rank, call, values);
            match wait(&mut channel, sum).await {
                Ok(sum) => {
                    let bytes = encode_tensor(REDUCE, call, &sum);
                    if channel.send(Message::new(bytes.into())).await.is_err() {
                        return;
                    }
                }
                Err(why) => return send_error(&mut channel, why).await,
            }
        }
    }
}

/// Wait for `rx`, failing if the node sends anything (or disconnects) meanwhile.
async fn wait<T>(
    channel: &mut WsServerChannel,
    rx: oneshot::Receiver<Result<T, String>>,
) -> Result<T, String> {
    tokio::select! {
        result = rx => result.unwrap_or_else(|_| Err("the orchestrator dropped the call".into())),
        _ = channel.recv() => Err("the node sent a message out of turn or disconnected".into()),
    }
}

async fn send_error(channel: &mut WsServerChannel, why: String) {
    let mut bytes = vec![ERROR];
    bytes.extend_from_slice(why.as_bytes());
    let _ = channel.send(Message::new(bytes.into())).await;
    let _ = channel.close().await;
}

fn decode_join(data: &[u8]) -> Option<(usize, usize)> {
    match data {
        [JOIN, rest @ ..] if rest.len() == 16 => {
            let rank = u64::from_le_bytes(rest[..8].try_into().ok()?);
            let nodes = u64::from_le_bytes(rest[8..].try_into().ok()?);
            Some((usize::try_from(rank).ok()?, usize::try_from(nodes).ok()?))
        }
        _ => None,
    }
}

/// `[kind][call u64][f32 values]`, little-endian.
fn encode_tensor(kind: u8, call: u64, values: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(9 + 4 * values.len());
    bytes.push(kind);
    bytes.extend_from_slice(&call.to_le_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

fn decode_tensor(data: &[u8]) -> Option<(u64, Vec<f32>)> {
    let call = u64::from_le_bytes(data.get(1..9)?.try_into().ok()?);
    let body = data.get(9..)?;
    if body.len() % 4 != 0 {
        return None;
    }
    let values = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some((call, values))
}

/// A node's connection to the orchestrator.
pub struct NodeLink {
    runtime: tokio::runtime::Runtime,
    channel: WsClientChannel,
    rank: usize,
    call: u64,
    timeout: Duration,
}

impl NodeLink {
    /// Connect to the orchestrator at `address` (retrying while it is not up yet) as node
    /// `rank` of `nodes`, and wait until every node has joined; `timeout` bounds that and
    /// every later call.
    pub fn join(
        address: &str,
        rank: usize,
        nodes: usize,
        timeout: Duration,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the network runtime: {e}"))?;
        let parsed: Address = address
            .parse()
            .map_err(|e| format!("orchestrator `{address}`: {e}"))?;
        let deadline = Instant::now() + timeout;
        let channel = guarded(|| {
            runtime.block_on(async {
                let mut channel = loop {
                    if let Some(c) = WsClient::connect(parsed.clone(), ROUTE).await {
                        break c;
                    }
                    if Instant::now() >= deadline {
                        return Err(format!(
                            "no orchestrator answers at {address} (is `next orchestrator` running \
                             there?)"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                let mut join = vec![JOIN];
                join.extend_from_slice(&(rank as u64).to_le_bytes());
                join.extend_from_slice(&(nodes as u64).to_le_bytes());
                send(&mut channel, join).await?;
                let left = deadline.saturating_duration_since(Instant::now());
                match receive(&mut channel, left, "waiting for the other nodes to join").await? {
                    reply if reply.first() == Some(&READY) => Ok(channel),
                    _ => Err("unexpected answer to joining".into()),
                }
            })
        })?;
        Ok(Self {
            runtime,
            channel,
            rank,
            call: 0,
            timeout,
        })
    }

    /// The element-wise sum of `values` over every node (same length everywhere).
    pub fn all_reduce_sum(&mut self, values: &[f32]) -> Result<Vec<f32>, String> {
        let bytes = encode_tensor(REDUCE, self.call, values);
        let (runtime, channel, timeout) = (&self.runtime, &mut self.channel, self.timeout);
        let reply = guarded(|| {
            runtime.block_on(async {
                send(channel, bytes).await?;
                receive(channel, timeout, "all-reduce").await
            })
        })?;
        match decode_tensor(&reply) {
            Some((call, sum)) if reply.first() == Some(&REDUCE) && call == self.call => {
                self.call += 1;
                Ok(sum)
            }
            _ => Err(format!(
                "node {}: unexpected answer to an all-reduce",
                self.rank
            )),
        }
    }

    /// Leave the training (after its last call).
    pub fn leave(mut self) -> Result<(), String> {
        let (runtime, channel) = (&self.runtime, &mut self.channel);
        guarded(|| {
            runtime.block_on(async {
                send(channel, vec![LEAVE]).await?;
                let _ = channel.close().await;
                Ok(())
            })
        })
    }
}

/// Run `f`, a panic inside Burn's websocket client becoming an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the connection to the orchestrator broke".into()))
}

async fn send(channel: &mut WsClientChannel, bytes: Vec<u8>) -> Result<(), String> {
    channel
        .send(Message::new(bytes.into()))
        .await
        .map_err(|e| format!("sending to the orchestrator: {e:?} (is it still running?)"))
}

/// The next message (an error message from the orchestrator becomes the error), within `limit`.
async fn receive(
    channel: &mut WsClientChannel,
    limit: Duration,
    what: &str,
) -> Result<Vec<u8>, String> {
    match tokio::time::timeout(limit, channel.recv()).await {
        Err(_) => Err(format!(
            "{what}: no answer within {} s: a node stopped or hangs",
            limit.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!(
            "{what}: the connection to the orchestrator broke: {e:?}"
        )),
        Ok(Ok(None)) => Err(format!("{what}: the orchestrator closed the connection")),
        Ok(Ok(Some(m))) => match m.data.first() {
            Some(&ERROR) => Err(format!(
                "{what}: the orchestrator says: {}",
                String::from_utf8_lossy(&m.data[1..])
            )),
            _ => Ok(m.data.to_vec()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_joins_round_trip_and_bad_messages_are_refused() {
        let values = [1.5f32, -0.25, 3e-8];
        let bytes = encode_tensor(REDUCE, 7, &values);
        assert_eq!(decode_tensor(&bytes), Some((7, values.to_vec())));
        assert_eq!(decode_tensor(&bytes[..bytes.len() - 1]), None);
        let mut join = vec![JOIN];
        join.extend_from_slice(&3u64.to_le_bytes());
        join.extend_from_slice(&4u64.to_le_bytes());
        assert_eq!(decode_join(&join), Some((3, 4)));
        assert_eq!(decode_join(&join[..10]), None);
    }

    #[test]
    fn a_session_sums_in_rank_order_and_a_mismatch_fails_every_node() {
        let mut s = Session::default();
        let mut ready = [s.join(1, 2).unwrap(), s.join(0, 2).unwrap()];
        assert!(s.join(0, 2).is_err(), "a rank joins twice");
        for r in &mut ready {
            assert_eq!(r.try_recv().unwrap(), Ok(()));
        }
        let mut a = s.contribute(1, 0, vec![1.0, 2.0]);
        let mut b = s.contribute(0, 0, vec![10.0, 20.0]);
        assert_eq!(*a.try_recv().unwrap().unwrap(), vec![11.0, 22.0]);
        assert_eq!(*b.try_recv().unwrap().unwrap(), vec![11.0, 22.0]);
        let mut c = s.contribute(0, 1, vec![1.0]);
        let mut d = s.contribute(1, 1, vec![1.0, 2.0]);
        assert!(c.try_recv().unwrap().is_err());
        assert!(d.try_recv().unwrap().is_err());
        assert!(s.contribute(0, 2, vec![1.0]).try_recv().unwrap().is_err());
    }

    #[test]
    fn two_nodes_sum_through_the_orchestrator_and_a_lost_node_fails_the_other() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(serve(port))
        });
        let address = format!("ws://127.0.0.1:{port}");
        let limit = Duration::from_secs(30);
        let other = {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut node = NodeLink::join(&address, 1, 2, limit).unwrap();
                let sum = node.all_reduce_sum(&[1.0, 2.0]).unwrap();
                (node, sum)
            })
        };
        let mut node = NodeLink::join(&address, 0, 2, limit).unwrap();
        assert_eq!(node.all_reduce_sum(&[10.0, 20.0]).unwrap(), [11.0, 22.0]);
        let (lost, sum) = other.join().unwrap();
        assert_eq!(sum, [11.0, 22.0]);
        // Node 1 goes away without leaving (as a killed process does).
        drop(lost);
        let error = node.all_reduce_sum(&[1.0, 2.0]).unwrap_err();
        assert!(error.contains("node 1 lost its connection"), "{error}");
    }
}
