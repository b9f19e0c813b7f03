//! The provider examples in `examples/providers/` are valid environments whose calls name
//! providers the registry has.

use std::path::Path;
use std::sync::Arc;

use tessera_lang::{EvalContext, Limits, Loaded};
use tessera_providers::PROVIDERS;

#[test]
fn provider_examples_check_cleanly_and_use_known_providers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/providers");
    for cloud in ["aws", "azure", "gcp"] {
        let path = root.join(cloud).join("environment.yaml");
        let src =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = format!("{cloud}/deploy");
        let mut loaded = Loaded::default();
        loaded.insert(
            &name,
            Ok(Arc::new(tessera_lang::parse(
                &name,
                &src,
                &Limits::default(),
            ))),
        );
        let mut ctx = EvalContext::default();
        ctx.set("pulumi.organization.login", "acme")
            .expect("context");
        ctx.set("pulumi.user.login", "alice").expect("context");
        let checked = tessera_lang::check(&loaded, &name, &ctx, &Limits::default());
        assert!(!checked.has_errors(), "{cloud}: {:?}", checked.diagnostics);
        let used: Vec<&str> = src
            .lines()
            .filter_map(|l| l.trim().strip_prefix("fn::open::"))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        assert!(!used.is_empty(), "{cloud}: no provider call");
        for provider in used {
            assert!(
                PROVIDERS.contains(&provider),
                "{cloud}: unknown provider {provider}"
            );
        }
        assert!(
            root.join(cloud).join("README.md").exists(),
            "{cloud}: README.md"
        );
    }
}
