//! Two processes all-reduce a tensor a few times through burn-collective's global orchestrator
//! on the loopback address, each call bounded: `cargo run -p next-train --example
//! global_all_reduce -- [calls]`. It prints which calls completed.
//!
//! With burn-collective 0.21.0 the first call completes and the second never does: every
//! global strategy ends with `SyncService::sync` (src/global/node/sync.rs), whose
//! "all nodes have synced" branch clears a *copy* of the list of synced peers
//! (`self.syncing_peers.lock().unwrap().to_vec()` ... `syncing_peers.clear()`), so from the
//! second barrier on the list holds every node twice and never equals the node list again.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{AllReduceStrategy, CollectiveConfig, PeerId, ReduceOperation};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type B = Flex;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |i: usize, default: u64| {
        args.get(i)
            .and_then(|a| a.parse::<u64>().ok())
            .unwrap_or(default)
    };
    if args.get(1).map(String::as_str) == Some("node") {
        node(
            number(2, 0),
            number(3, 0) as u16,
            number(4, 0) as u16,
            number(5, 3),
        );
    } else {
        parent(number(1, 3));
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Start the orchestrator on a thread and two node processes; wait at most 60 s for them.
fn parent(calls: u64) {
    let port = free_port();
    std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Runtime::new() {
            runtime.block_on(burn_collective::start_global_orchestrator(port));
        }
    });
    let exe = std::env::current_exe().expect("the example's own path");
    let mut children: Vec<_> = (0..2)
        .map(|rank| {
            Command::new(&exe)
                .args(["node", &rank.to_string(), &port.to_string()])
                .arg(free_port().to_string())
                .arg(calls.to_string())
                .stdout(Stdio::inherit())
                .spawn()
                .expect("starting a node process")
        })
        .collect();
    let started = Instant::now();
    for child in &mut children {
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                println!("node process exited: {status}");
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                println!("node process still running after 60 s: killed");
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Register as node `rank` of 2 (one device) and all-reduce `calls` times, each call bounded.
fn node(rank: u64, orchestrator: u16, data_port: u16, calls: u64) {
    let address = |port: u16| {
        format!("ws://127.0.0.1:{port}")
            .parse()
            .expect("an address")
    };
    let config = CollectiveConfig::default()
        .with_num_devices(1)
        .with_num_nodes(2)
        .with_global_address(address(orchestrator))
        .with_node_address(address(data_port))
        .with_data_service_port(data_port)
        .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2));
    let peer = PeerId(rank as u32);
    let device = Default::default();
    let registered = bounded(move || burn_collective::register::<B>(peer, device, config));
    println!("rank {rank}: register -> {registered}");
    for call in 1..=calls {
        let tensor = Tensor::<B, 1>::from_floats([rank as f32 + 1.0, 10.0], &Default::default());
        let primitive = tensor.into_primitive().tensor();
        let result = bounded(move || {
            burn_collective::all_reduce::<B>(peer, primitive, ReduceOperation::Sum).map(|t| {
                let t = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(t));
                t.into_data().to_vec::<f32>().unwrap_or_default()
            })
        });
        println!("rank {rank}: all-reduce {call} -> {result}");
        if result.starts_with("no answer") {
            std::process::exit(1);
        }
    }
    std::process::exit(0);
}

/// Run `call` on a thread; its result, or "no answer" after 15 s.
fn bounded<T: std::fmt::Debug + Send + 'static>(
    call: impl FnOnce() -> Result<T, burn_collective::CollectiveError> + Send + 'static,
) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(result) => format!("{result:?}"),
        Err(_) => "no answer within 15 s".into(),
    }
}
