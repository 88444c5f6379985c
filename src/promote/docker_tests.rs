use super::*;

fn request(image: &str, source: &str, target: &str) -> DockerRequest {
    DockerRequest {
        image: image.to_string(),
        source: source.to_string(),
        target: target.to_string(),
        ..DockerRequest::default()
    }
}

fn configured(name: &str) -> bool {
    ["docker-local", "docker-prod"].contains(&name)
}

#[test]
fn names_hosts_and_urls_with_a_path_are_registries() {
    let promotion = request(
        "jfrog/ubuntu",
        "docker-local",
        "https://host/artifactory/api/docker/docker-prod",
    )
    .resolve(&configured)
    .unwrap();
    assert_eq!(
        promotion.source.location,
        Location::Named("docker-local".into())
    );
    assert_eq!(
        promotion.target.location,
        Location::Host("https://host/artifactory/api/docker/docker-prod".into())
    );
    assert_eq!(promotion.target.repository, "jfrog/ubuntu");
    assert_eq!(promotion.mode, Transfer::Move);
    let copy = DockerRequest {
        copy: true,
        ..request("app", "registry.example.com:5000", "docker-prod")
    };
    let promotion = copy.resolve(&configured).unwrap();
    assert_eq!(
        promotion.source.location,
        Location::Host("registry.example.com:5000".into())
    );
    assert_eq!(promotion.mode, Transfer::Copy);
}

#[test]
fn a_registry_with_a_repository_is_refused_and_says_where_the_repository_goes() {
    let error = request("app", "registry.example.com/team", "docker-prod")
        .resolve(&configured)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("SOURCE") && error.contains("IMAGE"),
        "{error}"
    );
}

#[test]
fn a_tag_in_image_points_to_source_tag() {
    let error = request("app:1.0", "docker-local", "docker-prod")
        .resolve(&configured)
        .unwrap_err()
        .to_string();
    assert!(error.contains("--source-tag"), "{error}");
}

#[test]
fn target_tag_needs_source_tag() {
    let error = DockerRequest {
        target_tag: Some("1.0".into()),
        ..request("app", "docker-local", "docker-prod")
    }
    .resolve(&configured)
    .unwrap_err()
    .to_string();
    assert!(error.contains("--source-tag"), "{error}");
}

#[test]
fn promoting_onto_itself_is_refused_unless_a_tag_is_renamed() {
    let itself = request("app", "docker-local", "docker-local");
    assert!(itself.resolve(&configured).is_err());
    let same_tag = DockerRequest {
        source_tag: Some("1.0".into()),
        target_tag: Some("1.0".into()),
        ..itself.clone()
    };
    assert!(same_tag.resolve(&configured).is_err());
    let retag = DockerRequest {
        source_tag: Some("1.0-rc".into()),
        target_tag: Some("1.0".into()),
        ..itself.clone()
    };
    assert!(retag.resolve(&configured).is_ok());
    let renamed = DockerRequest {
        target_image: Some("app-stable".into()),
        ..itself
    };
    assert_eq!(
        renamed.resolve(&configured).unwrap().target.repository,
        "app-stable"
    );
}
