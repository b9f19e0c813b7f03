//! Rewriting the secrets of a definition's text: sealing plaintext before it is saved, and
//! revealing ciphertext for `decrypt` (under an Open grant). Everything else in the document
//! stays as the author wrote it.

use std::convert::Infallible;

use tessera_crypto::SecretString;
use tessera_lang::syntax::{self, Node, NodeKind};
use tessera_store::access::OpenGrant;
use tessera_store::StoreError;
use tessera_types::{OrgName, QualifiedEnv};

use super::Service;
use crate::error::ApiError;
use crate::wire;

fn parse_error(diags: tessera_lang::Diagnostics) -> ApiError {
    ApiError::Diagnostics {
        message: "the environment definition has errors; nothing was saved".into(),
        diagnostics: wire::diagnostics(&diags),
    }
}

/// Byte ranges of `fn::secret: {ciphertext: …}` arguments in `src`, with their ciphertext.
fn secret_sites(src: &str, root: &Node) -> Vec<(usize, usize, String)> {
    let mut sites = Vec::new();
    ciphertext_sites(root, &mut sites);
    for (start, end, _) in &mut sites {
        // A flow mapping's range stops before its closing brace: take the brace too.
        if src.as_bytes().get(*start) == Some(&b'{') {
            let rest = src.get(*end..).unwrap_or_default();
            let skipped = rest.len() - rest.trim_start().len();
            if rest.trim_start().starts_with('}') {
                *end += skipped + 1;
            }
        }
    }
    sites
}

fn ciphertext_sites(node: &Node, out: &mut Vec<(usize, usize, String)>) {
    match &node.kind {
        NodeKind::Map(entries) => {
            for e in entries {
                if e.key == "fn::secret" && entries.len() == 1 {
                    if let NodeKind::Map(inner) = &e.value.kind {
                        if let [c] = inner.as_slice() {
                            if let (true, NodeKind::String { value, .. }) =
                                (c.key == "ciphertext", &c.value.kind)
                            {
                                out.push((
                                    e.value.range.begin.byte as usize,
                                    e.value.range.end.byte as usize,
                                    value.clone(),
                                ));
                                continue;
                            }
                        }
                    }
                }
                ciphertext_sites(&e.value, out);
            }
        }
        NodeKind::Seq(items) => items.iter().for_each(|n| ciphertext_sites(n, out)),
        _ => {}
    }
}

impl Service {
    /// Replaces every plaintext `fn::secret` of `yaml` with its ciphertext, sealed for `env`.
    pub(crate) async fn seal_secrets(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        yaml: &str,
    ) -> Result<String, ApiError> {
        let name = env.to_string();
        let mut plaintexts: Vec<SecretString> = Vec::new();
        let first = tessera_lang::encrypt_secrets::<Infallible>(&name, yaml, &self.limits, |p| {
            plaintexts.push(SecretString::new(p));
            Ok(String::new())
        });
        if let Err(diags) = first {
            return Err(parse_error(diags));
        }
        if plaintexts.is_empty() {
            return Ok(yaml.to_owned());
        }
        let mut ciphertexts = Vec::with_capacity(plaintexts.len());
        for p in &plaintexts {
            ciphertexts.push(self.store.encrypt_secret(org, env, p).await?);
        }
        let mut sealed = ciphertexts.into_iter();
        match tessera_lang::encrypt_secrets(&name, yaml, &self.limits, |_| sealed.next().ok_or(()))
        {
            Ok(Ok(text)) => Ok(text),
            Ok(Err(())) => Err(ApiError::unexpected(std::io::Error::other(
                "the definition changed between the two sealing passes",
            ))),
            Err(diags) => Err(parse_error(diags)),
        }
    }

    /// The definition text with every ciphertext replaced by its plaintext. Needs the grant.
    pub(crate) async fn reveal_secrets(
        &self,
        grant: &OpenGrant,
        env: &QualifiedEnv,
        yaml: &str,
    ) -> Result<String, ApiError> {
        let name = std::sync::Arc::from(env.to_string());
        let (root, diags) = syntax::parse(&name, yaml, &self.limits);
        let Some(root) = root else {
            return if diags.has_errors() {
                Err(parse_error(diags))
            } else {
                Ok(yaml.to_owned())
            };
        };
        let sites = secret_sites(yaml, &root);
        let mut out = String::with_capacity(yaml.len());
        let mut at = 0usize;
        for (start, end, ciphertext) in sites {
            let (Some(before), Some(replaced)) = (yaml.get(at..start), yaml.get(start..end)) else {
                continue;
            };
            let plain = match self
                .store
                .decrypt_secret(grant, grant.org(), env, &ciphertext)
                .await
            {
                Ok(p) => p,
                Err(StoreError::Crypto { .. }) => {
                    return Err(ApiError::BadRequest(format!(
                        "a secret of {env} cannot be decrypted: its ciphertext is damaged or belongs to another environment"
                    )))
                }
                Err(e) => return Err(e.into()),
            };
            out.push_str(before);
            // Keep whatever whitespace the node's range ends with (line breaks of block maps).
            let kept = &replaced[replaced.trim_end().len()..];
            out.push_str(&tessera_lang::format::yaml_quote(plain.expose()));
            out.push_str(kept);
            at = end;
        }
        out.push_str(yaml.get(at..).unwrap_or_default());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_lang::Limits;

    fn sites(src: &str) -> Vec<(usize, usize, String)> {
        let name = std::sync::Arc::from("p/e");
        let (root, _) = syntax::parse(&name, src, &Limits::default());
        secret_sites(src, &root.unwrap())
    }

    fn rewrite(src: &str) -> String {
        let mut out = String::new();
        let mut at = 0;
        for (s, e, c) in sites(src) {
            out.push_str(&src[at..s]);
            let replaced = &src[s..e];
            out.push_str(&tessera_lang::format::yaml_quote(&format!("plain-{c}")));
            out.push_str(&replaced[replaced.trim_end().len()..]);
            at = e;
        }
        out.push_str(&src[at..]);
        out
    }

    #[test]
    fn flow_and_block_ciphertexts_are_replaced_and_the_document_still_parses() {
        let src = "values:\n  a:\n    fn::secret: {ciphertext: \"c1\"}\n  b:\n    fn::secret:\n      ciphertext: c2\n  c: [x, {fn::secret: {ciphertext: c3}}]\n  d: 1\n";
        let out = rewrite(src);
        assert_eq!(
            out,
            "values:\n  a:\n    fn::secret: \"plain-c1\"\n  b:\n    fn::secret:\n      \"plain-c2\"\n  c: [x, {fn::secret: \"plain-c3\"}]\n  d: 1\n"
        );
        let parsed = tessera_lang::parse("p/e", &out, &Limits::default());
        assert!(!parsed.diagnostics.has_errors(), "{:?}", parsed.diagnostics);
    }
}
