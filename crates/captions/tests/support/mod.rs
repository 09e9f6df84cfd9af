//! A small OpenAI-compatible chat-completions server on 127.0.0.1 for the client tests: it records
//! every request and answers as a per-test script says.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server saw in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `model` field.
    pub model: String,
    /// The image data URL's base64 payload (empty without image).
    pub image: String,
    /// The text part of the message.
    pub prompt: String,
    /// How many earlier requests had the same (model, image).
    pub attempt: usize,
}

impl Seen {
    /// The image bytes sent.
    pub fn image_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.image)
            .unwrap_or_default()
    }
}

/// How to answer one request.
pub enum Reply {
    /// 200 with this message content.
    Answer(String),
    /// An HTTP error status, with an optional Retry-After in seconds.
    Status(u16, Option<u64>),
    /// Wait, then answer.
    Slow(Duration, String),
    /// Never answer: wait until released, then close the connection without a response.
    Hold,
}

type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The running server.
pub struct FakeServer {
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    answered: Arc<Mutex<Vec<Seen>>>,
    released: Arc<AtomicBool>,
    flight: Arc<Flight>,
}

/// Requests read and not yet answered: now and the most ever.
#[derive(Default)]
struct Flight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl FakeServer {
    /// Start a server answering with `script`.
    pub fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let flight = Arc::new(Flight::default());
        let (s, a, r, f) = (
            seen.clone(),
            answered.clone(),
            released.clone(),
            flight.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, a, r, f, script) =
                    (s.clone(), a.clone(), r.clone(), f.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &s, &a, &r, &f, &*script));
            }
        });
        Self {
            base_url,
            seen,
            answered,
            released,
            flight,
        }
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Every request answered (or being answered) with 200 so far.
    pub fn answered(&self) -> Vec<Seen> {
        self.answered.lock().unwrap().clone()
    }

    /// The most requests the server was working on at once.
    pub fn max_in_flight(&self) -> usize {
        self.flight.max.load(Ordering::SeqCst)
    }

    /// Let held requests go (they are closed unanswered).
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
    }
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    answered: &Mutex<Vec<Seen>>,
    released: &AtomicBool,
    flight: &Flight,
    script: &Script,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = json["model"].as_str().unwrap_or_default().to_string();
    let mut prompt = String::new();
    let mut image = String::new();
    for part in json["messages"][0]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if let Some(t) = part["text"].as_str() {
            prompt = t.to_string();
        }
        if let Some(url) = part["image_url"]["url"].as_str() {
            image = url
                .split_once(',')
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
        }
    }
    let request = {
        let mut list = seen.lock().unwrap();
        let attempt = list
            .iter()
            .filter(|s| s.model == model && s.image == image)
            .count();
        let request = Seen {
            model,
            image,
            prompt,
            attempt,
        };
        list.push(request.clone());
        request
    };
    let now = flight.now.fetch_add(1, Ordering::SeqCst) + 1;
    flight.max.fetch_max(now, Ordering::SeqCst);
    let mut stream = stream;

    let (status, retry_after, content) = match script(&request) {
        Reply::Answer(c) => (200, None, c),
        Reply::Status(code, retry) => (code, retry, String::new()),
        Reply::Slow(wait, c) => {
            std::thread::sleep(wait);
            (200, None, c)
        }
        Reply::Hold => {
            while !released.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return;
        }
    };
    let body = if status == 200 {
        serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).to_string()
    } else {
        "{\"error\": \"scripted failure\"}".to_string()
    };
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    if let Some(s) = retry_after {
        head += &format!("Retry-After: {s}\r\n");
    }
    flight.now.fetch_sub(1, Ordering::SeqCst);
    if status == 200 {
        // Recorded before the write so a test never looks before the client can have the answer.
        answered.lock().unwrap().push(request);
    }
    let _ = stream
        .write_all(format!("{head}\r\n{body}").as_bytes())
        .and_then(|_| stream.flush());
}

/// A valid person answer whose values depend on the model and the modality in the prompt.
pub fn person_answer(seen: &Seen) -> String {
    let rgb = seen.prompt.contains("RGB image");
    let tir = seen.prompt.contains("TIR image");
    let strong = seen.model == "alpha";
    let colour = if rgb {
        ("black", 0.9)
    } else {
        ("unknown", 0.1)
    };
    let carried = if tir {
        ("carrying a backpack", 0.8)
    } else {
        ("unknown", 0.2)
    };
    let gender = if strong {
        ("female", 0.9)
    } else {
        ("male", 0.6)
    };
    format!(
        "```json\n{{\"age\": {{\"value\": \"adult\", \"confidence\": 0.9}}, \
         \"gender\": {{\"value\": \"{}\", \"confidence\": {}}}, \
         \"view\": {{\"value\": \"back\", \"confidence\": 0.8}}, \
         \"upper_color\": {{\"value\": \"{}\", \"confidence\": {}}}, \
         \"upper_type\": {{\"value\": \"jacket\", \"confidence\": 0.7}}, \
         \"carried_items\": {{\"value\": \"{}\", \"confidence\": {}}}, \
         \"target_clarity\": {{\"value\": \"blurry\", \"confidence\": 0.9}}}}\n```\nAll attributes given.",
        gender.0, gender.1, colour.0, colour.1, carried.0, carried.1
    )
}

/// Write a fake dataset `<root>/<split>/<RGB|NI|TI>/<i>.jpg` with distinct bytes per image.
pub fn fake_dataset(root: &std::path::Path, splits: &[&str], per_modality: usize) {
    for split in splits {
        for tag in ["RGB", "NI", "TI"] {
            let dir = root.join(split).join(tag);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..per_modality {
                std::fs::write(
                    dir.join(format!("{i:04}.jpg")),
                    format!("{split}/{tag}/{i}"),
                )
                .unwrap();
            }
        }
    }
}
