//! Unit tests of the OCI-layout store: round trips, mounts, deletes, catalog, paths.

use super::*;
use crate::manifest::OCI_MANIFEST;

/// An image manifest naming one config blob; `label` makes it unique.
fn manifest(label: &str) -> Manifest {
    let config = Digest::sha256_of(label.as_bytes());
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{}}},"layers":[]}}"#,
        label.len()
    );
    Manifest::from_bytes(body.into_bytes(), None).unwrap()
}

fn store() -> (tempfile::TempDir, OciLayoutStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = OciLayoutStore::new(dir.path());
    (dir, store)
}

fn read_blob(store: &OciLayoutStore, repository: &str, digest: &Digest, size: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    store
        .blob_get(repository, digest, size)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn tags_round_trip_and_move() {
    let (_dir, store) = store();
    let (one, two) = (manifest("one"), manifest("two"));
    store.manifest_put("app", "1.0", &one).unwrap();
    store.manifest_put("app", "latest", &one).unwrap();

    assert_eq!(store.tags("app").unwrap(), ["1.0", "latest"]);
    assert_eq!(
        store.manifest_head("app", "1.0").unwrap(),
        Some(ManifestHead {
            digest: one.digest.clone(),
            media_type: OCI_MANIFEST.into(),
            size: one.bytes.len() as u64,
        })
    );
    assert_eq!(store.manifest_get("app", "latest").unwrap(), one);

    // Writing a tag again moves it; the other tag stays.
    store.manifest_put("app", "latest", &two).unwrap();
    assert_eq!(store.tags("app").unwrap(), ["1.0", "latest"]);
    assert_eq!(store.manifest_get("app", "latest").unwrap(), two);
    assert_eq!(store.manifest_get("app", "1.0").unwrap(), one);

    assert_eq!(store.manifest_head("app", "2.0").unwrap(), None);
    assert!(store.manifest_get("app", "2.0").unwrap_err().is_not_found());
    assert!(store.tags("other").unwrap_err().is_not_found());
}

#[test]
fn manifests_by_digest_are_stored_without_a_tag() {
    let (_dir, store) = store();
    let (one, absent) = (manifest("one"), manifest("absent"));
    store
        .manifest_put("app", &one.digest.to_string(), &one)
        .unwrap();

    assert_eq!(
        store.manifest_get("app", &one.digest.to_string()).unwrap(),
        one
    );
    assert_eq!(
        store
            .manifest_head("app", &one.digest.to_string())
            .unwrap()
            .map(|h| (h.digest, h.media_type)),
        Some((one.digest.clone(), OCI_MANIFEST.to_string()))
    );
    assert!(store.blob_exists("app", &one.digest).unwrap());
    assert_eq!(
        store
            .manifest_head("app", &absent.digest.to_string())
            .unwrap(),
        None
    );
    // No tag was written: the repository has no index yet.
    assert!(store.tags("app").unwrap_err().is_not_found());
}

#[test]
fn blobs_round_trip_and_a_digest_mismatch_is_refused() {
    let (dir, store) = store();
    let content = b"layer bytes".as_slice();
    let digest = Digest::sha256_of(content);
    let size = content.len() as u64;
    store
        .blob_put("app", &digest, size, &mut &content[..], None)
        .unwrap();
    assert!(store.blob_exists("app", &digest).unwrap());
    assert_eq!(read_blob(&store, "app", &digest, size), content);
    assert_eq!(store.counters().bytes_uploaded(), size);

    // Bytes that do not hash to the digest named are not stored under it.
    let claimed = Digest::sha256_of(b"something else");
    let error = store
        .blob_put("app", &claimed, size, &mut &content[..], None)
        .unwrap_err();
    assert!(matches!(error, RegistryError::Verification(_)), "{error}");
    assert!(!store.blob_exists("app", &claimed).unwrap());
    let left: Vec<_> = fs::read_dir(dir.path().join("app/blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, [digest.hex()], "no temporary file is left behind");

    // A reader checks the size it was promised.
    let mut short = Vec::new();
    let read = store
        .blob_get("app", &digest, size + 1)
        .unwrap()
        .read_to_end(&mut short);
    assert!(read.is_err());
    assert!(
        store
            .blob_get("app", &claimed, size)
            .err()
            .unwrap()
            .is_not_found()
    );
}

#[test]
fn a_blob_mounts_from_another_repository_of_the_store() {
    let (_dir, store) = store();
    let content = b"shared layer".as_slice();
    let digest = Digest::sha256_of(content);
    let size = content.len() as u64;
    store
        .blob_put("apps/web", &digest, size, &mut &content[..], None)
        .unwrap();

    assert_eq!(
        store.blob_mount("apps/api", &digest, "apps/web").unwrap(),
        MountOutcome::Mounted
    );
    assert_eq!(read_blob(&store, "apps/api", &digest, size), content);
    let missing = Digest::sha256_of(b"nowhere");
    assert_eq!(
        store.blob_mount("apps/api", &missing, "apps/web").unwrap(),
        MountOutcome::NotMounted(None)
    );
}

#[test]
fn deleting_a_tag_leaves_the_manifest_and_its_other_tags() {
    let (_dir, store) = store();
    let one = manifest("one");
    store.manifest_put("app", "1.0", &one).unwrap();
    store.manifest_put("app", "latest", &one).unwrap();

    assert!(store.tag_delete("app", "latest").unwrap());
    assert_eq!(store.tags("app").unwrap(), ["1.0"]);
    assert_eq!(
        store.manifest_get("app", &one.digest.to_string()).unwrap(),
        one
    );
    assert!(
        store
            .tag_delete("app", "latest")
            .unwrap_err()
            .is_not_found()
    );
    assert!(store.tag_delete("other", "1.0").unwrap_err().is_not_found());
}

#[test]
fn deleting_a_manifest_removes_every_tag_pointing_at_it() {
    let (_dir, store) = store();
    let (one, two) = (manifest("one"), manifest("two"));
    store.manifest_put("app", "1.0", &one).unwrap();
    store.manifest_put("app", "1", &one).unwrap();
    store.manifest_put("app", "2.0", &two).unwrap();

    store.manifest_delete("app", &one.digest).unwrap();
    assert_eq!(store.tags("app").unwrap(), ["2.0"]);
    assert!(
        store
            .manifest_delete("app", &one.digest)
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn the_catalog_lists_nested_repositories() {
    let (dir, store) = store();
    let one = manifest("one");
    for repository in ["tools", "apps/web", "apps/web/debug", "apps/api"] {
        store.manifest_put(repository, "1.0", &one).unwrap();
    }
    // A directory without an `oci-layout` marker is not a repository.
    fs::create_dir_all(dir.path().join("apps/notes")).unwrap();

    assert_eq!(
        store.catalog().unwrap(),
        ["apps/api", "apps/web", "apps/web/debug", "tools"]
    );
    assert!(
        OciLayoutStore::new(dir.path().join("missing"))
            .catalog()
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn repository_names_cannot_leave_the_store() {
    let (_dir, store) = store();
    let one = manifest("one");
    for repository in ["../escape", "/abs", "a//b"] {
        assert!(
            store.manifest_put(repository, "1.0", &one).is_err(),
            "{repository}"
        );
    }
}
