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
use std::collections::btree_map::Entry;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
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
    /// For the hash of each top-level key, the topmost layer holding a key with that hash:
    /// a lookup starts there, and a key no layer holds costs one probe, not one per layer.
    /// An importer copies its first import's index (hashes and positions, no strings) and
    /// adds its own keys, so the copies along a chain cost far less than the values did.
    index: HashMap<u64, usize, Mix>,
    /// Layers below this position are hidden by one whose root is not an object (an
    /// evaluation stopped by a limit), which replaces everything below it.
    floor: usize,
    /// Whether any layer holds a final value, at any depth.
    finals: bool,
    value: OnceLock<Arc<Value>>,
}

/// A top-level key's hash for [`Stack::index`] (FNV-1a): fixed, so that an importer can copy
/// an index, and cheap for short keys. Keys sharing a hash, even chosen to, only make a
/// lookup start higher in the stack than it needs to, as every lookup did before the index;
/// the map itself mixes these with a random key ([`Mix`]), so chosen keys cannot crowd it.
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Hashes [`key_hash`]es for the index's table: a random key and a full-avalanche
/// finalizer, cheap next to SipHash and unpredictable to whoever chose the keys.
#[derive(Clone)]
struct Mix(u64);

impl Default for Mix {
    fn default() -> Mix {
        Mix(RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for Mix {
    type Hasher = Mixed;

    fn build_hasher(&self) -> Mixed {
        Mixed(self.0)
    }
}

/// One [`Mix`] hashing in progress.
struct Mixed(u64);

impl Hasher for Mixed {
    fn finish(&self) -> u64 {
        // The finalizer of MurmurHash3 (fmix64): every output bit depends on every input bit.
        let mut x = self.0;
        x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, h: u64) {
        self.0 ^= h;
    }
}

impl Stack {
    /// Lays an imported environment's layers on top of this stack.
    pub(crate) fn import(&mut self, imported: &Stack) {
        let offset = self.layers.len();
        // On an empty stack the imported layers keep their marks: what lies below each of
        // them is unchanged.
        let keep = offset == 0;
        self.layers.extend(imported.layers.iter().map(|l| Layer {
            value: l.value.clone(),
            complete: keep && l.complete,
        }));
        if keep {
            self.index = imported.index.clone();
            self.floor = imported.floor;
        } else {
            // Every imported position lies above every position already here.
            self.index
                .extend(imported.index.iter().map(|(&h, &i)| (h, offset + i)));
            if imported.floor > 0 {
                self.floor = offset + imported.floor;
            }
        }
        self.finals |= imported.finals;
        self.value = OnceLock::new();
    }

    /// This stack with an environment's own values on top; `own` is `None` for an environment
    /// without `values`, which exports its imports' layers as they are.
    pub(crate) fn with_own(mut self, own: Option<Value>) -> Stack {
        if let Some(own) = own {
            let position = self.layers.len();
            match own.as_object() {
                Some(entries) => {
                    for k in entries.keys() {
                        self.index.insert(key_hash(k), position);
                    }
                }
                None => self.floor = position + 1,
            }
            self.finals |= own.contains_finals();
            self.layers.push(Layer {
                value: Arc::new(own),
                complete: true,
            });
            self.value = OnceLock::new();
        }
        self
    }

    /// Whether any layer holds a final value: without one, what lies under a value that is
    /// not an object cannot change it.
    pub(crate) fn holds_finals(&self) -> bool {
        self.finals
    }

    /// The merged value at top-level key `key`, borrowed when one layer holds all of it.
    pub(crate) fn get(&self, key: &str) -> Option<Cow<'_, Value>> {
        let top = *self.index.get(&key_hash(key))?;
        if top < self.floor {
            return None;
        }
        let mut found = self.layers[self.floor..=top].iter().rev().filter_map(|l| {
            let v = l.value.as_object()?.get(key)?;
            Some((v, l.complete))
        });
        let (first, complete) = found.next()?;
        if complete {
            return Some(Cow::Borrowed(first));
        }
        let mut all = vec![first];
        for (v, complete) in found {
            all.push(v);
            if complete {
                break;
            }
        }
        if let [only] = all.as_slice() {
            return Some(Cow::Borrowed(*only));
        }
        let mut below = all.iter().rev();
        let bottom = Value::clone(below.next()?);
        Some(Cow::Owned(
            below.fold(bottom, |acc, v| merge(acc, Value::clone(v))),
        ))
    }

    /// The whole merged value, built on first use.
    pub(crate) fn value(&self) -> &Arc<Value> {
        self.value.get_or_init(|| Arc::new(self.build()))
    }

    /// Builds the whole merged value: each key from the topmost layer holding it, folded with
    /// the layers below when that layer is not complete.
    fn build(&self) -> Value {
        let Some(top) = self.layers.last() else {
            return Value::object(BTreeMap::new());
        };
        match top.value.as_object() {
            Some(_) if top.complete => self.fill(Value::clone(&top.value), self.layers.len() - 1),
            Some(_) => {
                // The merged root carries the top layer's marks, as merging two objects does.
                let mut root = Value::object(BTreeMap::new());
                root.secret = top.value.secret;
                root.def = top.value.def.clone();
                root.is_final = top.value.is_final;
                self.fill(root, self.layers.len())
            }
            None => Value::clone(&top.value),
        }
    }

    /// The whole merged value, taking the top layer's entries rather than copying them when
    /// nothing else holds them (the opened environment's own values), and likewise those of
    /// the complete layers right under it.
    pub(crate) fn into_value(mut self) -> Value {
        let Some(top) = self.layers.last_mut() else {
            return Value::object(BTreeMap::new());
        };
        if !top.complete || top.value.as_object().is_none() {
            return self.build();
        }
        // Lookups of keys the top layer holds never reach `fill`; others find it empty.
        let placeholder = Arc::new(Value::object(BTreeMap::new()));
        let mut own = Arc::unwrap_or_clone(std::mem::replace(&mut top.value, placeholder));
        let ValueKind::Object(entries) = &mut own.kind else {
            unreachable!("the top layer is an object")
        };
        let mut below = self.layers.len() - 1;
        // Emptied layers, like the top one, hold only keys already taken.
        while below > self.floor {
            let layer = &mut self.layers[below - 1];
            let taken = match Arc::get_mut(&mut layer.value) {
                Some(Value {
                    kind: ValueKind::Object(layer_entries),
                    unknown: false,
                    ..
                }) if layer.complete => std::mem::take(layer_entries),
                _ => break,
            };
            for (k, v) in taken {
                entries.entry(k).or_insert(v);
            }
            below -= 1;
        }
        self.fill(own, below)
    }

    /// Adds to the object `top` every key that the layers below position `below` hold and
    /// it does not, merged.
    fn fill(&self, mut top: Value, below: usize) -> Value {
        let ValueKind::Object(entries) = &mut top.kind else {
            return top;
        };
        for layer in self.layers[self.floor.min(below)..below].iter().rev() {
            let Some(layer_entries) = layer.value.as_object() else {
                break;
            };
            for (k, v) in layer_entries {
                // Keys seldom repeat across layers: one search, at the price of a copied key
                // when they do.
                let Entry::Vacant(slot) = entries.entry(k.clone()) else {
                    continue;
                };
                if layer.complete {
                    slot.insert(v.clone());
                } else if let Some(v) = self.get(k) {
                    // No layer above holds `k`, so the lookup starts here.
                    slot.insert(v.into_owned());
                }
            }
        }
        top
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
    fn taking_the_layers_builds_the_same_value() {
        // An import chain, whose layers stay complete, alone or under a second import.
        let chain = || {
            let mut st = Stack::default();
            for v in [
                obj(&[("a", s("1")), ("d", obj(&[("x", s("1"))]))]),
                obj(&[("b", s("2")), ("d", obj(&[("x", s("1")), ("y", s("2"))]))]),
                obj(&[("a", s("3"))]),
            ] {
                let mut next = Stack::default();
                next.import(&st.with_own(Some(v)));
                st = next;
            }
            st
        };
        let mut side = chain();
        side.import(&stack(&[obj(&[("b", s("4"))])]));
        for st in [chain(), side] {
            let top = st.with_own(Some(obj(&[("c", s("5"))])));
            let built = top.build();
            assert_eq!(top.into_value(), built);
        }
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
