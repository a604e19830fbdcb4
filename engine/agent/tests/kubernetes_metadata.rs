//! `kubernetes_logs` with `metadata:` against a scripted Kubernetes API server: a small
//! HTTP server in the test process that answers the pod LIST and streams WATCH events the
//! test pushes. Events must carry their pod's labels, annotations and node; label filters
//! keep and drop the right pods; a 410 on the watch leads to a new LIST; with no API at
//! all, every line still goes out with the metadata of its path, and the miss is counted.

mod support;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::node::{Node, append, cri, terminate};

/// What the scripted API server serves and saw.
#[derive(Default)]
struct State {
    /// The pods a LIST returns.
    pods: Vec<Value>,
    /// The first LIST returns no pods (to see a re-list bring them).
    empty_first_list: bool,
    /// Watches to answer with `410 Gone`.
    gone_watches: usize,
    /// Watch event lines not yet sent to the open watch.
    events: VecDeque<String>,
    /// Request targets, in order.
    requests: Vec<String>,
    /// Their `authorization` headers.
    authorizations: Vec<String>,
    lists: usize,
    watches: usize,
}

struct ApiServer {
    url: String,
    state: Arc<Mutex<State>>,
}

impl ApiServer {
    fn start(pods: Vec<Value>) -> ApiServer {
        ApiServer::start_with(pods, None)
    }

    /// Over TLS with `tls` (a server config), when given.
    fn start_with(pods: Vec<Value>, tls: Option<Arc<rustls::ServerConfig>>) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            pods,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let state = shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    Some(tls) => {
                        let Ok(server) = rustls::ServerConnection::new(tls) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(server, conn), &state);
                    }
                    None => serve(conn, &state),
                });
            }
        });
        ApiServer { url, state }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Queues a watch event and waits until the open watch has sent it.
    fn push(&self, kind: &str, pod: Value) {
        let line = json!({"type": kind, "object": pod}).to_string();
        self.with(|s| s.events.push_back(line));
        wait_until("the watch to send the event", || self.with(|s| s.events.is_empty()));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads a request head, byte by byte (the stream may be TLS).
fn read_head(conn: &mut impl Read) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

fn serve(mut conn: impl Read + Write, state: &Mutex<State>) {
    let Some(head) = read_head(&mut conn) else { return };
    let target = head.split(' ').nth(1).unwrap_or_default().to_string();
    let authorization = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("authorization:")
                .then(|| l[14..].trim().to_string())
        })
        .unwrap_or_default();
    let watch = target.contains("watch=1");
    let mut s = state.lock().unwrap();
    s.requests.push(target);
    s.authorizations.push(authorization);
    if !watch {
        s.lists += 1;
        let items = if s.empty_first_list && s.lists == 1 {
            Vec::new()
        } else {
            s.pods.clone()
        };
        let body =
            json!({"kind": "PodList", "metadata": {"resourceVersion": format!("{}", 100 * s.lists)}, "items": items})
                .to_string();
        drop(s);
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.flush();
        return;
    }
    s.watches += 1;
    if s.gone_watches > 0 {
        s.gone_watches -= 1;
        drop(s);
        let body = r#"{"kind":"Status","code":410,"reason":"Expired"}"#;
        let _ = write!(
            conn,
            "HTTP/1.1 410 Gone\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    drop(s);
    if conn
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        .and_then(|()| conn.flush())
        .is_err()
    {
        return;
    }
    loop {
        let next = state.lock().unwrap().events.pop_front();
        match next {
            Some(line) => {
                let data = format!("{line}\n");
                if write!(conn, "{:x}\r\n{data}\r\n", data.len()).is_err() || conn.flush().is_err() {
                    return;
                }
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn pod(ns: &str, name: &str, labels: Value, annotations: Value) -> Value {
    json!({
        "metadata": {
            "name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": "7",
            "labels": labels, "annotations": annotations,
        },
        "spec": {"nodeName": "node-1"},
    })
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn by_message(events: &[Value]) -> std::collections::BTreeMap<String, Value> {
    events
        .iter()
        .map(|e| (e["message"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

/// Waits until the agent whose admin endpoint is `admin` has applied `n` watch events.
fn wait_applied(admin: &str, n: f64) {
    let name = "weir_kubernetes_watch_events_total{component=\"kubernetes_logs\"}";
    wait_until("the agent to apply the watch events", || {
        support::agent::metrics(admin).get(name) == Some(&n)
    });
}

fn free_address() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[test]
fn events_get_labels_annotations_and_node_from_the_list_and_the_watch() {
    let api = ApiServer::start(vec![pod(
        "prod",
        "web-1",
        json!({"app": "web", "tier": "front"}),
        json!({"team": "a"}),
    )]);
    let node = Node::new();
    let admin = free_address();
    let cfg = node.config(
        &format!(
            "    metadata: {{ api: \"{}\", node_name: node-1, annotations: true }}\n",
            api.url
        ),
        &format!("admin: {{ address: \"{admin}\" }}\n"),
    );
    let web = node.container_log("prod", "web-1", "nginx", 0);
    append(&web, &cri("stdout", "F", "web line"));
    // A pod the API does not know yet: its first line goes out without labels.
    let late = node.container_log("prod", "late-1", "app", 0);
    append(&late, &cri("stdout", "F", "late before"));
    let mut agent = node.start(&cfg);
    node.wait_for(2, Duration::from_secs(10));
    wait_until("the watch", || api.with(|s| s.watches == 1));

    // A pod added through the watch after the start.
    api.push("ADDED", pod("prod", "api-1", json!({"app": "api"}), json!({})));
    wait_applied(&admin, 1.0);
    let api1 = node.container_log("prod", "api-1", "app", 0);
    append(&api1, &cri("stdout", "F", "api line"));
    // The late pod's metadata arrives: its next lines get it.
    api.push("ADDED", pod("prod", "late-1", json!({"app": "late"}), json!({})));
    wait_applied(&admin, 2.0);
    append(&late, &cri("stdout", "F", "late after"));
    let events = node.wait_for(4, Duration::from_secs(10));
    assert!(terminate(&mut agent).success());

    let got = by_message(&events);
    assert_eq!(got.len(), 4, "{events:#?}");
    let web = &got["web line"];
    assert_eq!(web["labels"], json!({"app": "web", "tier": "front"}), "{web}");
    assert_eq!(web["annotations"], json!({"team": "a"}), "{web}");
    assert_eq!(web["node"], "node-1", "{web}");
    assert_eq!(web["pod"], "web-1", "{web}");
    assert_eq!(web["namespace"], "prod", "{web}");
    assert_eq!(got["api line"]["labels"], json!({"app": "api"}));
    assert_eq!(got["api line"]["annotations"], json!({}));
    assert!(got["late before"].get("labels").is_none(), "{}", got["late before"]);
    assert_eq!(got["late before"]["pod"], "late-1");
    assert_eq!(got["late after"]["labels"], json!({"app": "late"}));

    let requests = api.with(|s| s.requests.clone());
    assert!(
        requests[0].starts_with("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1"),
        "{requests:?}"
    );
    assert!(
        requests[1].contains("watch=1") && requests[1].contains("resourceVersion=100"),
        "{requests:?}"
    );
}

#[test]
fn label_filters_keep_and_drop_the_right_pods() {
    let api = ApiServer::start(vec![
        pod("prod", "web-1", json!({"app": "web"}), json!({})),
        pod("prod", "api-1", json!({"app": "api", "debug": "yes"}), json!({})),
        pod("prod", "db-1", json!({"app": "db"}), json!({})),
        pod("prod", "chat-1", json!({"app": "web"}), json!({})),
    ]);
    let node = Node::new();
    let admin = free_address();
    let cfg = node.config(
        &format!(
            "    metadata:\n      api: \"{}\"\n      node_name: node-1\n      node: false\n      \
             include_labels: {{ app: 'web|api' }}\n      exclude_labels: {{ debug: 'yes|true' }}\n",
            api.url
        ),
        &format!("admin: {{ address: \"{admin}\" }}\n"),
    );
    for (pod, msg) in [
        ("web-1", "web kept"),
        ("api-1", "api dropped"),
        ("db-1", "db dropped"),
        ("unknown-1", "unknown kept"),
        ("chat-1", "chat kept"),
    ] {
        append(&node.container_log("prod", pod, "c", 0), &cri("stdout", "F", msg));
    }
    let mut agent = node.start(&cfg);
    node.wait_for(3, Duration::from_secs(10));
    wait_until("the watch", || api.with(|s| s.watches == 1));
    // chat-1's labels change so that the filters drop it: its later lines go.
    api.push(
        "MODIFIED",
        pod("prod", "chat-1", json!({"app": "web", "debug": "true"}), json!({})),
    );
    wait_applied(&admin, 1.0);
    let chat = node.path("pods/prod_chat-1_uid-chat-1/c/0.log");
    append(&chat, &cri("stdout", "F", "chat dropped"));
    let web = node.path("pods/prod_web-1_uid-web-1/c/0.log");
    append(&web, &cri("stdout", "F", "web kept 2"));
    node.wait_for(4, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    let events = node.events();
    assert!(terminate(&mut agent).success());

    let got = by_message(&events);
    let kept: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        kept,
        ["chat kept", "unknown kept", "web kept", "web kept 2"],
        "{events:#?}"
    );
    assert_eq!(got["web kept"]["labels"], json!({"app": "web"}));
    assert!(got["web kept"].get("node").is_none());
    assert!(got["unknown kept"].get("labels").is_none());
}

#[test]
fn with_the_api_down_every_line_goes_out_with_path_metadata_and_the_miss_is_counted() {
    let nobody = free_address(); // nothing listens there
    let admin = free_address();
    let node = Node::new();
    let cfg = node.config(
        &format!("    metadata: {{ api: \"http://{nobody}\", node_name: node-1 }}\n"),
        &format!("admin: {{ address: \"{admin}\" }}\n"),
    );
    let web = node.container_log("prod", "web-1", "nginx", 0);
    for i in 0..5 {
        append(&web, &cri("stdout", "F", &format!("line {i}")));
    }
    let started = Instant::now();
    let mut agent = node.start(&cfg);
    let events = node.wait_for(5, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(5), "reading was held up");
    for e in &events {
        assert_eq!(e["pod"], "web-1", "{e}");
        assert_eq!(e["pod_uid"], "uid-web-1", "{e}");
        assert!(e.get("labels").is_none(), "{e}");
    }
    let component = "{component=\"kubernetes_logs\"}";
    let mut metrics = Default::default();
    wait_until("the metrics", || {
        metrics = support::agent::metrics(&admin);
        metrics.contains_key(&format!("weir_kubernetes_api_errors_total{component}"))
    });
    assert_eq!(
        metrics.get(&format!("weir_kubernetes_metadata_missing_total{component}")),
        Some(&5.0),
        "{metrics:?}"
    );
    assert!(terminate(&mut agent).success());
    let stderr = std::fs::read_to_string(node.path("stderr.txt")).unwrap();
    assert_eq!(
        stderr.matches("LIST pods").count(),
        1,
        "warnings are rate-limited: {stderr}"
    );
}

#[test]
fn a_watch_answered_410_gone_leads_to_a_new_list() {
    let api = ApiServer::start(vec![pod("prod", "web-1", json!({"app": "web"}), json!({}))]);
    api.with(|s| {
        s.empty_first_list = true;
        s.gone_watches = 1;
    });
    let node = Node::new();
    let cfg = node.config(
        &format!("    metadata: {{ api: \"{}\", node_name: node-1 }}\n", api.url),
        "",
    );
    let mut agent = node.start(&cfg);
    wait_until("a second list and a watch", || {
        api.with(|s| s.lists == 2 && s.watches == 2)
    });
    // Only the second LIST knew the pod.
    let web = node.container_log("prod", "web-1", "nginx", 0);
    append(&web, &cri("stdout", "F", "after relist"));
    let events = node.wait_for(1, Duration::from_secs(10));
    assert!(terminate(&mut agent).success());
    assert_eq!(events[0]["labels"], json!({"app": "web"}), "{events:#?}");
    let requests = api.with(|s| s.requests.clone());
    assert!(requests[3].contains("resourceVersion=200"), "{requests:?}");
}

#[test]
fn https_with_a_ca_file_and_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = support::certs::generate(dir.path());
    let server: weir::net::tls::TlsConfig = serde_saphyr::from_str(&format!(
        "crt_file: {}\nkey_file: {}\n",
        pki.server.0.display(),
        pki.server.1.display()
    ))
    .unwrap();
    let api = ApiServer::start_with(
        vec![pod("prod", "web-1", json!({"app": "web"}), json!({}))],
        Some(server.server().unwrap()),
    );
    let token = dir.path().join("token");
    std::fs::write(&token, "secret-token-1\n").unwrap();
    let node = Node::new();
    let cfg = node.config(
        &format!(
            "    metadata:\n      api: \"{}\"\n      node_name: node-1\n      token_file: {}\n      tls: {{ ca_file: {} }}\n",
            api.url,
            token.display(),
            pki.ca.display()
        ),
        "",
    );
    let web = node.container_log("prod", "web-1", "nginx", 0);
    append(&web, &cri("stdout", "F", "over tls"));
    let mut agent = node.start(&cfg);
    let events = node.wait_for(1, Duration::from_secs(10));
    assert!(terminate(&mut agent).success());
    assert_eq!(events[0]["labels"], json!({"app": "web"}), "{events:#?}");
    assert_eq!(api.with(|s| s.authorizations[0].clone()), "Bearer secret-token-1");
}
