use super::Jwt;
use crate::engine::Engine;

#[test]
fn role_names_fold_to_lower_case() {
    let jwt = Jwt::default();
    assert_eq!(
        jwt.canonical_rest("role/GitHub").as_deref(),
        Some("role/github")
    );
    assert_eq!(jwt.canonical_rest("config"), None);
    assert_eq!(jwt.canonical_rest("login"), None);
}
