use serde_json::json;

use super::canonical_rest;

#[test]
fn role_names_fold_to_lower_case_and_nothing_else_does() {
    assert_eq!(
        canonical_rest("role/Deploy").as_deref(),
        Some("role/deploy")
    );
    assert_eq!(
        canonical_rest("role/CI/secret-id/lookup").as_deref(),
        Some("role/ci/secret-id/lookup")
    );
    assert_eq!(canonical_rest("login"), None);
    assert_eq!(canonical_rest("role/"), None);
    let _ = json!({});
}
