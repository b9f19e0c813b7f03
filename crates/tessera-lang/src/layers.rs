//! What an environment exports to its importers: its values as a stack of layers, read key by
//! key without being merged into one value.
//!
//! Importing lays each imported environment's layers under the importer's own values and
//! merges them (objects key by key, anything else replaces, `fn::final` values stay). Merging
//! is not associative, so an environment exports the layers it folds rather than only their
//! result. Building that result at every environment of an import chain would copy everything
//! below at every level, which costs the square of the chain's length; a [`Stack`] instead
//! answers lookups by top-level key, folding only the layers that hold the key, and builds the
//! whole value only when asked (for the opened environment, or a reference to a whole import).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::eval::merge;
use crate::value::{Value, ValueKind};

/// One environment's own values: the object its `values` evaluated to, without the keys it
/// only inherits.
#[derive(Clone)]
struct Layer {
    value: Arc<Value>,
    /// Whether each entry already folds every layer below it in this stack, so that a lookup
    /// finding its key here can stop.
    ///
    /// *Invariant*: a complete layer's entry for key `k` is the fold of this layer and all the
    /// layers below it at `k`. An environment's own layer is complete over its own imports'
    /// layers, because its entries were evaluated over exactly that base; it stays complete
    /// while nothing is put under it, that is in the first imported stack of an importer, and
    /// loses the mark in any stack laid on top of another.
    complete: bool,
}

/// An environment's layers, bottom first, and their merged value once built.
#[derive(Default)]
pub(crate) struct Stack {
    layers: Vec<Layer>,
    value: OnceLock<Arc<Value>>,
}

impl Stack {
    /// Lays an imported environment's layers on top of this stack.
    pub(crate) fn import(&mut self, imported: &Stack) {
        // On an empty stack the imported layers keep their marks: what lies below each of
        // them is unchanged.
        let keep = self.layers.is_empty();
        self.layers.extend(imported.layers.iter().map(|l| Layer {
            value: l.value.clone(),
            complete: keep && l.complete,
        }));
        self.value = OnceLock::new();
    }

    /// This stack with an environment's own values on top; `own` is `None` for an environment
    /// without `values`, which exports its imports' layers as they are.
    pub(crate) fn with_own(mut self, own: Option<Value>) -> Stack {
        if let Some(own) = own {
            self.layers.push(Layer {
                value: Arc::new(own),
                complete: true,
            });
            self.value = OnceLock::new();
        }
        self
    }

    /// The merged value at top-level key `key`, borrowed when one layer holds all of it.
    pub(crate) fn get(&self, key: &str) -> Option<Cow<'_, Value>> {
        let mut found: Vec<&Value> = Vec::new();
        for layer in self.layers.iter().rev() {
            // A layer whose root is not an object (an evaluation stopped by a limit) replaces
            // everything below it.
            let Some(entries) = layer.value.as_object() else {
                break;
            };
            if let Some(v) = entries.get(key) {
                found.push(v);
                if layer.complete {
                    break;
                }
            }
        }
        match found.as_slice() {
            [] => None,
            [only] => Some(Cow::Borrowed(*only)),
            _ => {
                let mut below = found.iter().rev();
                let first = Value::clone(below.next()?);
                Some(Cow::Owned(
                    below.fold(first, |acc, v| merge(acc, Value::clone(v))),
                ))
            }
        }
    }

    /// The merged value at a path of keys (empty: the whole value).
    pub(crate) fn at<'k>(&self, mut keys: impl Iterator<Item = &'k str>) -> Option<Cow<'_, Value>> {
        let Some(first) = keys.next() else {
            return Some(Cow::Borrowed(self.value()));
        };
        let mut v = self.get(first)?;
        for k in keys {
            v = match v {
                Cow::Borrowed(v) => Cow::Borrowed(v.get(k)?),
                Cow::Owned(v) => Cow::Owned(v.get(k)?.clone()),
            };
        }
        Some(v)
    }

    /// The whole merged value, built on first use.
    pub(crate) fn value(&self) -> &Arc<Value> {
        self.value.get_or_init(|| Arc::new(self.build()))
    }

    /// Builds the whole merged value: each key from the topmost layer holding it, folded with
    /// the layers below when that layer is not complete.
    pub(crate) fn build(&self) -> Value {
        let Some(top) = self.layers.last() else {
            return Value::object(BTreeMap::new());
        };
        let Some(top_entries) = top.value.as_object() else {
            return Value::clone(&top.value);
        };
        let mut entries = if top.complete {
            top_entries.clone()
        } else {
            BTreeMap::new()
        };
        for layer in self.layers.iter().rev() {
            let Some(layer_entries) = layer.value.as_object() else {
                break;
            };
            for (k, v) in layer_entries {
                if entries.contains_key(k) {
                    continue;
                }
                let v = if layer.complete {
                    v.clone()
                } else {
                    // No layer above holds `k`, so the lookup starts here.
                    match self.get(k) {
                        Some(v) => v.into_owned(),
                        None => continue,
                    }
                };
                entries.insert(k.clone(), v);
            }
        }
        // The merged root carries the top layer's marks, as merging two objects does.
        Value {
            kind: ValueKind::Object(entries),
            secret: top.value.secret,
            unknown: false,
            def: top.value.def.clone(),
            is_final: top.value.is_final,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(entries: &[(&str, Value)]) -> Value {
        Value::object(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn s(text: &str) -> Value {
        Value::string(text)
    }

    fn stack(own: &[Value]) -> Stack {
        let mut st = Stack::default();
        for v in own {
            st.import(&Stack::default().with_own(Some(v.clone())));
        }
        st
    }

    #[test]
    fn a_complete_layer_answers_alone() {
        let below = Stack::default().with_own(Some(obj(&[("a", s("1")), ("b", s("2"))])));
        let mut base = Stack::default();
        base.import(&below);
        let top = base.with_own(Some(obj(&[("a", s("3"))])));
        assert!(matches!(top.get("a"), Some(Cow::Borrowed(v)) if v.as_str() == Some("3")));
        assert_eq!(
            top.get("b").and_then(|v| v.as_str().map(str::to_owned)),
            Some("2".into())
        );
        assert!(top.get("c").is_none());
        let all = top.build();
        assert_eq!(all.get("a").and_then(Value::as_str), Some("3"));
        assert_eq!(all.get("b").and_then(Value::as_str), Some("2"));
    }

    #[test]
    fn layers_of_a_later_import_fold_with_what_lies_below() {
        // a: {d: {x: 1}}, then b: {d: 5} and c: {d: {y: 2}} imported together: b's scalar
        // hides a's object before c's object lands.
        let st = stack(&[
            obj(&[("d", obj(&[("x", s("1"))]))]),
            obj(&[("d", s("5"))]),
            obj(&[("d", obj(&[("y", s("2"))]))]),
        ]);
        let d = st.get("d").map(Cow::into_owned);
        assert_eq!(d, Some(obj(&[("y", s("2"))])));
        assert_eq!(st.build(), obj(&[("d", obj(&[("y", s("2"))]))]));
    }

    #[test]
    fn a_final_value_below_stays() {
        let mut frozen = s("frozen");
        frozen.is_final = true;
        let st = stack(&[obj(&[("k", frozen.clone())]), obj(&[("k", s("new"))])]);
        assert_eq!(
            st.get("k").and_then(|v| v.as_str().map(str::to_owned)),
            Some("frozen".into())
        );
    }

    #[test]
    fn a_root_that_is_not_an_object_hides_what_lies_below() {
        let st = stack(&[
            obj(&[("a", s("1"))]),
            Value::unknown(),
            obj(&[("b", s("2"))]),
        ]);
        assert!(st.get("a").is_none());
        assert_eq!(st.build(), obj(&[("b", s("2"))]));
    }
}
