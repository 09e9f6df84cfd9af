//! The chat-completions client and the attribute stage against a real HTTP server on loopback.

mod support;

use next_captions::{
    run_attributes, run_caption_stage, scan_dataset, AnswerCache, AttributeRunConfig, CaptionError,
    CaptionStage, ChatClient, ClientConfig, ObjectKind, PipelineOptions, PromptTemplate,
};
use next_common::{Modality, Progress};
use std::time::Duration;
use support::{fake_dataset, person_answer, FakeServer, Reply};

fn client(server: &FakeServer, timeout_ms: u64, attempts: u32) -> ChatClient {
    ChatClient::new(ClientConfig {
        base_url: server.base_url.clone(),
        timeout: Duration::from_millis(timeout_ms),
        max_attempts: attempts,
        backoff_initial: Duration::from_millis(5),
        backoff_max: Duration::from_millis(20),
        ..ClientConfig::default()
    })
}

fn config(models: &[&str], concurrency: usize) -> AttributeRunConfig {
    AttributeRunConfig {
        models: models.iter().map(|m| m.to_string()).collect(),
        kind: ObjectKind::Person,
        prompt: PromptTemplate::attributes(ObjectKind::Person),
        concurrency,
    }
}

#[test]
fn malformed_answers_are_retried_and_hopeless_ones_reported() {
    // Image 0000: broken JSON once, then valid. Image 0001: never valid.
    let server = FakeServer::start(|s| {
        let name = String::from_utf8(s.image_bytes()).unwrap_or_default();
        if name.ends_with("/1") {
            Reply::Answer("{\"age\": {\"value\": \"adult\", \"confidence\": 0.9".into())
        } else if s.attempt == 0 {
            Reply::Answer("```json\n{\"age\": {\"value\": adult}}\n```".into())
        } else {
            Reply::Answer(person_answer(s))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    fake_dataset(&dir.path().join("data"), &["test"], 2);
    let jobs: Vec<_> = scan_dataset(&dir.path().join("data"))
        .unwrap()
        .into_iter()
        .filter(|j| j.modality == Modality::Rgb)
        .collect();
    let cache = AnswerCache::new(dir.path().join("cache"));
    let run = run_attributes(
        &client(&server, 2000, 3),
        &cache,
        &jobs,
        &config(&["alpha"], 2),
        &mut Progress::hidden(2),
    );
    assert_eq!((run.asked, run.cached, run.failures.len()), (1, 0, 1));
    let failure = &run.failures[0];
    assert_eq!(
        (failure.item.as_str(), failure.model.as_str()),
        ("0001.jpg", "alpha")
    );
    assert!(failure.error.contains("unbalanced"), "{}", failure.error);
    // The failed image is still listed, with no model answer.
    let key = ("test".to_string(), Modality::Rgb, "0001.jpg".to_string());
    assert!(run.sets[&key].is_empty());
    let good = ("test".to_string(), Modality::Rgb, "0000.jpg".to_string());
    assert_eq!(run.sets[&good]["alpha"]["upper_color"].value, "black");
    let seen = server.seen();
    assert_eq!(seen.len(), 2 + 3, "two tries for 0000, three for 0001");
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let server = FakeServer::start(|s| match s.attempt {
        0 => Reply::Status(429, Some(0)),
        1 => Reply::Status(503, None),
        _ => Reply::Answer(person_answer(s)),
    });
    let c = client(&server, 2000, 4);
    let (answer, set) = c
        .complete_validated("alpha", "RGB image", None, |a| {
            next_captions::parse_attribute_answer(a, ObjectKind::Person)
        })
        .unwrap();
    assert!(answer.contains("```json"));
    assert_eq!(set["gender"].value, "female");
    assert_eq!(server.seen().len(), 3);
    // With too few attempts the last status is returned.
    let server = FakeServer::start(|_| Reply::Status(429, None));
    let err = client(&server, 2000, 2)
        .complete_once("alpha", "x", None)
        .unwrap_err();
    assert!(
        err.to_string().contains("HTTP 429") && err.is_retryable(),
        "{err}"
    );
    let server = FakeServer::start(|_| Reply::Status(400, None));
    let c = client(&server, 2000, 5);
    let err = c
        .complete_validated("alpha", "x", None, |_| Ok(()))
        .unwrap_err();
    assert!(
        err.to_string().contains("HTTP 400") && !err.is_retryable(),
        "{err}"
    );
    assert_eq!(server.seen().len(), 1, "a 400 is not retried");
}

#[test]
fn a_timed_out_request_is_retried() {
    let server = FakeServer::start(|s| match s.attempt {
        0 => Reply::Slow(Duration::from_secs(5), person_answer(s)),
        _ => Reply::Answer(person_answer(s)),
    });
    let c = client(&server, 500, 3);
    let (_, set) = c
        .complete_validated("beta", "TIR image", None, |a| {
            next_captions::parse_attribute_answer(a, ObjectKind::Person)
        })
        .unwrap();
    assert_eq!(set["carried_items"].value, "carrying a backpack");
    let seen = server.seen();
    assert!(seen.len() >= 2, "the timed-out request was sent again");
    assert_eq!(seen[1].attempt, 1);
}

#[test]
fn a_second_run_is_served_from_the_cache() {
    let server = FakeServer::start(|s| Reply::Slow(Duration::from_millis(20), person_answer(s)));
    let dir = tempfile::tempdir().unwrap();
    fake_dataset(&dir.path().join("data"), &["train"], 3);
    let jobs = scan_dataset(&dir.path().join("data")).unwrap();
    let cache = AnswerCache::new(dir.path().join("cache"));
    let cfg = config(&["alpha", "beta"], 3);
    let first = run_attributes(
        &client(&server, 2000, 2),
        &cache,
        &jobs,
        &cfg,
        &mut Progress::hidden(18),
    );
    assert_eq!(
        (first.asked, first.cached, first.failures.len()),
        (18, 0, 0)
    );
    let second = run_attributes(
        &client(&server, 2000, 2),
        &cache,
        &jobs,
        &cfg,
        &mut Progress::hidden(18),
    );
    assert_eq!(
        (second.asked, second.cached, second.failures.len()),
        (0, 18, 0)
    );
    assert_eq!(second.sets, first.sets);
    assert_eq!(server.seen().len(), 18);
    assert!(
        server.max_in_flight() <= 3,
        "concurrency bound broken: {}",
        server.max_in_flight()
    );

    // A new prompt version is a new key.
    let cfg_v2 = AttributeRunConfig {
        prompt: PromptTemplate::new("person_attributes.v2", "{modality} image"),
        ..cfg
    };
    let third = run_attributes(
        &client(&server, 2000, 2),
        &cache,
        &jobs[..1],
        &cfg_v2,
        &mut Progress::hidden(2),
    );
    assert_eq!((third.asked, third.cached), (2, 0));
}

fn pipeline_args(server: &FakeServer, root: &std::path::Path) -> PipelineOptions {
    PipelineOptions {
        work: root.join("work"),
        dataset: Some(root.join("data")),
        kind: ObjectKind::Person,
        models: vec!["alpha".into(), "beta".into()],
        base_url: server.base_url.clone(),
        api_key_env: "NEXT_CAPTIONS_TEST_NO_KEY".into(),
        concurrency: 3,
        timeout_s: 2.0,
        max_attempts: 2,
        backoff_s: 0.005,
        backoff_max_s: 0.02,
        prompt: None,
        rules: None,
        threshold: None,
        compose_model: None,
        compose_prompt: None,
        out: None,
    }
}

#[test]
fn the_whole_pipeline_reports_failures_and_keeps_every_image() {
    // Model beta always fails on test/RGB/0; everything else answers.
    let server = FakeServer::start(|s| {
        if s.model == "beta" && s.image_bytes() == b"test/RGB/0" {
            Reply::Status(500, None)
        } else {
            Reply::Answer(person_answer(s))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    fake_dataset(&dir.path().join("data"), &["train", "test"], 2);
    let args = pipeline_args(&server, dir.path());
    let err = run_caption_stage(CaptionStage::All, &args).unwrap_err();
    let CaptionError::Failures { count, report } = &err else {
        panic!("{err}")
    };
    assert_eq!(*count, 1);
    let failures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(failures[0]["item"], "0000.jpg");
    assert_eq!(failures[0]["model"], "beta");
    assert_eq!(failures[0]["modality"], "rgb");

    let captions = dir.path().join("work/captions");
    let read = |name: &str| next_captions::read_caption_file(&captions.join(name)).unwrap();
    for split in ["train", "test"] {
        for tag in ["RGB", "NI", "TI"] {
            let entries = read(&format!("{split}_{tag}.json"));
            let items: Vec<_> = entries.iter().map(|e| e.item.as_str()).collect();
            assert_eq!(items, ["0000.jpg", "0001.jpg"], "{split}_{tag}");
        }
    }
    // alpha (listed first, more confident) wins gender; TIR's backpack fills RGB and NIR; RGB's colour fills NIR.
    let rgb = read("test_RGB.json");
    assert_eq!(
        rgb[0].description,
        "An adult female seen from the back. She is wearing a black jacket. She is carrying a backpack. The image appears blurry."
    );
    assert_eq!(read("train_NI.json")[1].description, rgb[0].description);
    let stats = std::fs::read_to_string(dir.path().join("work/stats.txt")).unwrap();
    let line = stats
        .lines()
        .find(|l| l.starts_with("NIR") && l.contains("carried_items"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[2..], ["100.0", "100.0", "0.0"], "{line}");

    // A rerun asks nothing again except the failed request, which fails again.
    let before = server.seen().len();
    let err = run_caption_stage(CaptionStage::Attributes, &args).unwrap_err();
    assert!(
        matches!(err, CaptionError::Failures { count: 1, .. }),
        "{err}"
    );
    assert_eq!(
        server.seen().len(),
        before + 2,
        "only the failed request is asked again (two attempts)"
    );
}

#[test]
fn optional_llm_composition_rewrites_caches_and_falls_back() {
    // Attribute requests carry an image; composition requests carry "Draft caption:".
    let server = FakeServer::start(|s| {
        if let Some((_, draft)) = s.prompt.split_once("Draft caption:\n") {
            if draft.contains("carrying") && s.model == "writer" {
                Reply::Answer(format!("\"Rewritten: {}\"\n", draft.trim()))
            } else {
                Reply::Status(500, None)
            }
        } else {
            Reply::Answer(person_answer(s))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    fake_dataset(&dir.path().join("data"), &["test"], 1);
    let mut args = pipeline_args(&server, dir.path());
    run_caption_stage(CaptionStage::All, &args).unwrap();
    args.compose_model = Some("writer".into());
    args.out = Some(dir.path().join("llm"));
    // Every test image carries the TIR backpack after complement, so all three are rewritten.
    run_caption_stage(CaptionStage::Compose, &args).unwrap();
    let rgb = next_captions::read_caption_file(&dir.path().join("llm/test_RGB.json")).unwrap();
    assert!(
        rgb[0].description.starts_with("Rewritten: An adult female"),
        "{}",
        rgb[0].description
    );
    let asked = server.seen().len();
    run_caption_stage(CaptionStage::Compose, &args).unwrap();
    assert_eq!(
        server.seen().len(),
        asked,
        "composed captions come from the cache"
    );
    // A model that always fails keeps the template captions and reports each image.
    args.compose_model = Some("broken".into());
    let err = run_caption_stage(CaptionStage::Compose, &args).unwrap_err();
    assert!(
        matches!(err, CaptionError::Failures { count: 3, .. }),
        "{err}"
    );
    let rgb = next_captions::read_caption_file(&dir.path().join("llm/test_RGB.json")).unwrap();
    assert!(
        rgb[0].description.starts_with("An adult female"),
        "{}",
        rgb[0].description
    );
}
