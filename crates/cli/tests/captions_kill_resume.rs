//! Kill the `next-captions` process in the middle of a run, resume, and check that no request that
//! was answered before the kill is sent again.

#[path = "../../captions/tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{fake_dataset, person_answer, FakeServer, Reply};

const ANSWERED_BEFORE_KILL: usize = 5;

fn cached_entries(dir: &std::path::Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".json") && !name.starts_with('.') {
                count += 1;
            }
        }
    }
    count
}

#[test]
fn killed_run_resumes_without_repeating_answered_requests() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let counter = AtomicUsize::new(0);
    // The first few requests are answered; later ones hang until the test lets them go.
    let server = FakeServer::start(move |s| {
        if counter.fetch_add(1, Ordering::SeqCst) < ANSWERED_BEFORE_KILL {
            Reply::Answer(person_answer(s))
        } else {
            Reply::Hold
        }
    });
    let dir = tempfile::tempdir().unwrap();
    fake_dataset(&dir.path().join("data"), &["train"], 3);
    let work = dir.path().join("work");
    let command = |stage: &str, base_url: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_next-captions"));
        cmd.args([stage, "--work"])
            .arg(&work)
            .arg("--dataset")
            .arg(dir.path().join("data"));
        cmd.args([
            "--model",
            "alpha",
            "--model",
            "beta",
            "--base-url",
            base_url,
        ]);
        cmd.args([
            "--concurrency",
            "2",
            "--timeout-s",
            "60",
            "--backoff-s",
            "0.005",
            "--max-attempts",
            "2",
        ]);
        cmd.env_remove("OPENAI_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let mut child = command("attributes", &server.base_url).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cached_entries(&work.join("cache")) < ANSWERED_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "the child never cached {ANSWERED_BEFORE_KILL} answers"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let answered_before: Vec<_> = server.answered();
    assert_eq!(answered_before.len(), ANSWERED_BEFORE_KILL);
    let seen_before = server.seen().len();
    // Requests held at the kill are closed unanswered; the resumed run talks to a fresh server.
    server.release();
    let resumed = FakeServer::start(|s| Reply::Answer(person_answer(s)));
    let status = command("all", &resumed.base_url).status().unwrap();
    assert!(status.success());
    let after = resumed.seen();
    assert_eq!(
        after.len(),
        18 - ANSWERED_BEFORE_KILL,
        "9 images x 2 models, minus the answered ones"
    );
    for a in &answered_before {
        assert!(
            !after
                .iter()
                .any(|b| b.model == a.model && b.image == a.image),
            "{} was asked again for {:?}",
            a.model,
            String::from_utf8_lossy(&a.image_bytes())
        );
    }
    let mut all: Vec<_> = answered_before
        .iter()
        .chain(after.iter())
        .map(|s| (s.model.clone(), s.image.clone()))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 18, "every (image, model) answered exactly once");
    assert!(seen_before >= ANSWERED_BEFORE_KILL);
    let captions =
        next_reid::captions::read_caption_file(&work.join("captions/train_TI.json")).unwrap();
    assert_eq!(captions.len(), 3);
}
