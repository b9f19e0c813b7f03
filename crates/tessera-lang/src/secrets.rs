//! Rewriting plaintext secrets into their stored form before a definition is saved.
//!
//! `fn::secret: hunter2` becomes `fn::secret: {ciphertext: "…"}` in the document text, with
//! everything else (comments, order, formatting) left as the author wrote it, so the stored
//! YAML holds no plaintext and reading a definition never needs a decryption.

use std::sync::Arc;

use crate::diag::Diagnostics;
use crate::limits::Limits;
use crate::syntax::{self, Node, NodeKind};

/// Replaces every `fn::secret` plaintext literal in `src` with `{ciphertext: "<encrypt(plaintext)>"}`.
/// Documents that do not parse are returned as diagnostics and nothing is encrypted.
/// `encrypt` returns the ciphertext text, or an error that aborts the rewrite.
pub fn encrypt_secrets<E>(
    environment: &str,
    src: &str,
    limits: &Limits,
    mut encrypt: impl FnMut(&str) -> Result<String, E>,
) -> Result<Result<String, E>, Diagnostics> {
    let name: Arc<str> = Arc::from(environment);
    let (root, diags) = syntax::parse(&name, src, limits);
    let Some(root) = root else {
        return Err(diags);
    };
    if diags.has_errors() {
        return Err(diags);
    }
    let mut found = Vec::new();
    collect(&root, &mut found);
    let mut out = String::with_capacity(src.len());
    let mut at = 0usize;
    for (start, end, plaintext) in found {
        let ciphertext = match encrypt(&plaintext) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        out.push_str(&src[at..start]);
        out.push_str(&format!(
            "{{ciphertext: {}}}",
            crate::value::go_quote(&ciphertext)
        ));
        at = end;
    }
    out.push_str(&src[at..]);
    Ok(Ok(out))
}

fn collect(node: &Node, out: &mut Vec<(usize, usize, String)>) {
    match &node.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                if e.key == "fn::secret" && entries.len() == 1 {
                    if let NodeKind::String { value, .. } = &e.value.kind {
                        if !value.contains("${") {
                            let (start, end) = (
                                e.value.range.begin.byte as usize,
                                e.value.range.end.byte as usize,
                            );
                            out.push((start, end, value.replace("$${", "${")));
                            continue;
                        }
                    }
                }
                collect(&e.value, out);
            }
        }
        NodeKind::Seq(items) => items.iter().for_each(|n| collect(n, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(src: &str) -> String {
        encrypt_secrets::<()>("e", src, &Limits::default(), |p| {
            Ok(format!("enc({})", p.len()))
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn plaintext_is_replaced_and_the_rest_kept() {
        let src = "# comment\nvalues:\n  a:\n    fn::secret: hunter2 # trailing\n  b: [x, {fn::secret: 'q'}]\n  c:\n    fn::secret:\n      ciphertext: old\n";
        let out = rewrite(src);
        assert!(!out.contains("hunter2"));
        assert_eq!(out, "# comment\nvalues:\n  a:\n    fn::secret: {ciphertext: \"enc(7)\"} # trailing\n  b: [x, {fn::secret: {ciphertext: \"enc(1)\"}}]\n  c:\n    fn::secret:\n      ciphertext: old\n");
        let parsed = crate::parse("e", &out, &Limits::default());
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    }

    #[test]
    fn block_scalars_are_replaced_whole() {
        let out =
            rewrite("values:\n  k:\n    fn::secret: |\n      line1\n      line2\n  after: 1\n");
        assert!(!out.contains("line1"), "{out}");
        let parsed = crate::parse("e", &out, &Limits::default());
        assert!(
            parsed.diagnostics.is_empty(),
            "{out}\n{:?}",
            parsed.diagnostics
        );
    }

    #[test]
    fn broken_documents_are_refused() {
        assert!(
            encrypt_secrets::<()>("e", "values: [", &Limits::default(), |p| Ok(p.to_owned()))
                .is_err()
        );
    }
}
