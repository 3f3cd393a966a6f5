//! `allot import` and `allot export`: a template to start from, a dry run,
//! a file imported whole or refused with every bad row, and an export that
//! holds what was imported.

use crate::common::{on_both_backends, Service};

on_both_backends!(import_and_export_files);

async fn import_and_export_files(service: Service) {
    let template = service.allot(&["import", "accounts", "--template"]).await;
    let template = template.ok(&["import", "accounts", "--template"]);
    assert!(template.starts_with("id,external_id,name,"), "{template}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.csv");
    std::fs::write(&file, "name,external_id\nAcme,CRM-1\n\"Beta, Ltd\",CRM-2\n").unwrap();
    let path = file.to_str().unwrap();
    let args = ["import", "accounts", path, "--dry-run"];
    let dry = service.allot(&args).await.ok(&args);
    assert_eq!(dry, "dry run: 2 rows checked, all good; nothing written\n");
    let args = ["import", "accounts", path];
    let done = service.allot(&args).await.ok(&args);
    assert_eq!(done, "imported 2 rows: 2 created\n");
    // Again: both external ids exist now; nothing is written, each row said.
    let again = service.allot(&args).await;
    again.failed(&args, 6);
    assert!(
        again
            .stderr
            .contains("row 2, external_id: an account with this external_id exists"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("row 3, external_id:"),
        "{}",
        again.stderr
    );
    let args = ["export", "accounts"];
    let exported = service.allot(&args).await.ok(&args);
    let mut lines = exported.lines();
    assert!(lines.next().unwrap().starts_with("id,name,"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{exported}");
    assert!(
        rows.iter()
            .any(|r| r.contains("\"Beta, Ltd\"") && r.ends_with("CRM-2")),
        "{exported}"
    );
}
