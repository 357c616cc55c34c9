//! The audit export streams: a hundred thousand records go out while the server's memory stays
//! flat. In a test binary of its own, so nothing else running in this process moves the peak
//! it measures.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use sqlx::{Connection, Executor};

/// Peak resident memory of this process (the server runs in it), in KiB; `reset` starts a new
/// peak from now.
fn peak_kib(reset: bool) -> u64 {
    if reset {
        std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak (Linux)");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_a_hundred_thousand_records_streams_with_flat_memory() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("bulk").await;
    let tenant = app.tenant_id("bulk").await;
    let mut place = app.inspect_tenant("bulk").await;
    place.execute(format!("SET app.tenant_id = '{tenant}'").as_str()).await.unwrap();
    place
        .execute(
            "INSERT INTO audit_log (action, target_type, target_id, changes, user_agent, ip)
             SELECT 'project.updated', 'project', g::text,
                    jsonb_build_object('description', jsonb_build_object('old', repeat('a', 200), 'new', repeat('b', 200))),
                    'Mozilla/5.0 ' || repeat('x', 100), '192.0.2.1'
               FROM generate_series(1, 100000) g",
        )
        .await
        .unwrap();
    place.close().await.unwrap();

    let start = peak_kib(true);
    let mut response = owner.raw_get("/t/bulk/settings/audit/export.csv?action=project.updated").await;
    assert_eq!(response.status(), StatusCode::OK);
    let (mut bytes, mut lines) = (0usize, 0usize);
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    let peak = peak_kib(false);
    assert_eq!(lines, 100_001, "a header and every record");
    let grew_mib = peak.saturating_sub(start) / 1024;
    let sent_mib = bytes / (1024 * 1024);
    println!("exported {sent_mib} MiB in {lines} lines; the process's peak memory grew {grew_mib} MiB");
    assert!(sent_mib >= 60, "the export is large enough to tell ({sent_mib} MiB)");
    assert!(grew_mib < 32, "memory stays flat: grew {grew_mib} MiB while sending {sent_mib} MiB");
    let checked = tessera_backend::audit::verify(&app.backend.tenancy, Some("bulk")).await.unwrap();
    assert!(checked[0].1.as_ref().unwrap().verified(), "a hundred thousand records in one statement chain correctly");
}
