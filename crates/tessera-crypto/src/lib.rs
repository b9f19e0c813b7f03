//! Envelope encryption for Tessera.
//!
//! A [`MasterKey`] (32 bytes, from `TESSERA_MASTER_KEY`, a key file, or generated) wraps one
//! or more [`DataKey`]s per organization; data keys seal secrets, open-session results and
//! OIDC signing keys. Both layers use XChaCha20-Poly1305 with a random 24-byte nonce.
//!
//! Every sealed value is bound by associated data ([`Aad`]) to where it belongs: an
//! organization and an environment for secrets, an organization and a purpose for the rest.
//! Opening it anywhere else fails with [`CryptoError::WrongContext`], never a panic.
//!
//! # Sealed value byte format (version 1)
//!
//! ```text
//! offset  size  field
//! 0       1     format version, 0x01
//! 1       4     data key id, unsigned big-endian (which of the organization's data keys)
//! 5       24    XChaCha20 nonce, random
//! 29      n+16  ciphertext of the n plaintext bytes, followed by the Poly1305 tag
//! ```
//!
//! The AEAD associated data is the 5-byte header followed by the [`Aad`] encoding:
//! `"tessera-aad-v1" 0x00`, a kind byte (`0x01` environment, `0x02` purpose), then each field
//! (organization, then environment `project/env` or purpose) as a 4-byte big-endian length
//! and its UTF-8 bytes. In YAML definitions a sealed secret is written
//! `fn::secret: {ciphertext: <standard base64 of the sealed bytes>}` (see [`to_text`]).
//!
//! # Wrapped data key byte format (version 1)
//!
//! ```text
//! 0   1    format version, 0x01
//! 1   24   nonce
//! 25  48   the 32 key bytes encrypted, followed by the 16-byte tag
//! ```
//!
//! with associated data `"tessera-wrap-v1" 0x00`, the organization (length-prefixed), the
//! data key id (4 bytes) and the wrapping master key id (length-prefixed). The master key id
//! ([`MasterKey::id`]) is derived from the key itself, so a key given again from the
//! environment always has the same id; a [`Keyring`] holding the new and the previous master
//! keys unwraps data keys wrapped by either, which is how rotation runs without downtime.
//!
//! # Speed
//!
//! RustCrypto's poly1305 AVX2 backend is about ten times slower than its portable backend
//! for short values on the machines Tessera is developed and tested on, so the workspace's
//! `.cargo/config.toml` builds with `--cfg poly1305_force_soft`.
#![warn(missing_docs)]

mod secret;

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use secret::{SecretBytes, SecretString};

/// The sealed-value format version written by [`seal`].
pub const SEALED_VERSION: u8 = 1;
const WRAPPED_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Why a key could not be loaded or a value could not be sealed or opened.
///
/// Messages never contain plaintext or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The bytes are too short or otherwise not a sealed value.
    #[error("malformed ciphertext: {0}")]
    Malformed(&'static str),
    /// A format version this build does not know.
    #[error("unsupported ciphertext format version {0}")]
    UnsupportedVersion(u8),
    /// Authentication failed: the value was sealed for another place, or altered.
    #[error("cannot decrypt: the ciphertext does not belong to {context} (it was sealed for another environment or organization, or altered)")]
    WrongContext {
        /// Where the caller expected the value to belong, e.g. `organization "acme", environment "app/dev"`.
        context: String,
    },
    /// The value names a data key the organization does not have.
    #[error("cannot decrypt: the ciphertext was sealed with data key {key_id}, which organization {org:?} does not have (it belongs to another organization?)")]
    UnknownDataKey {
        /// The organization whose keys were searched.
        org: String,
        /// The data key id read from the ciphertext.
        key_id: u32,
    },
    /// A wrapped data key did not unwrap under the master key that claims to have wrapped it.
    #[error("cannot unwrap data key {key_id} of organization {org:?} with master key {master_key_id}: wrong key, or the wrapped key was altered")]
    Unwrap {
        /// The organization.
        org: String,
        /// The data key id.
        key_id: u32,
        /// The master key id tried.
        master_key_id: String,
    },
    /// A data key was wrapped by a master key the keyring does not hold.
    #[error("data key {key_id} of organization {org:?} is wrapped by master key {master_key_id}, which is not configured (give the previous master key until rotation completes)")]
    UnknownMasterKey {
        /// The organization.
        org: String,
        /// The data key id.
        key_id: u32,
        /// The master key id recorded beside the wrapped key.
        master_key_id: String,
    },
    /// A master key that is not base64 of 32 bytes.
    #[error("invalid master key: {0} (expected the standard base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")]
    InvalidMasterKey(&'static str),
    /// A key file that cannot be read.
    #[error("cannot read master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text form of a ciphertext is not base64.
    #[error("ciphertext text is not valid base64")]
    Base64,
    /// Decrypted bytes that should be text are not UTF-8.
    #[error("decrypted value is not valid UTF-8")]
    NotUtf8,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// The plaintext is larger than XChaCha20-Poly1305 can seal.
    #[error("plaintext too large to seal")]
    TooLarge,
}

/// Fills a fresh buffer with `n` bytes from the operating system's random number generator.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, CryptoError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(buf)
}

fn random_key() -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::getrandom(key.as_mut_slice()).map_err(|e| CryptoError::Random(e.to_string()))?;
    Ok(key)
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // Lengths are bounded by names and purposes well under 4 GiB.
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field);
}

/// Associated data: where a sealed value belongs. A value sealed with one `Aad` opens only
/// with an equal one.
#[derive(Clone, PartialEq, Eq)]
pub struct Aad {
    bytes: Vec<u8>,
    description: String,
}

impl Aad {
    /// A secret of environment `env` (`project/env`) in organization `org`.
    pub fn environment(org: &str, env: &str) -> Aad {
        Aad::build(
            1,
            org,
            env,
            format!("organization {org:?}, environment {env:?}"),
        )
    }

    /// A value of organization `org` used for `purpose` (e.g. `open-session`, `oidc-signing-key`).
    pub fn purpose(org: &str, purpose: &str) -> Aad {
        Aad::build(
            2,
            org,
            purpose,
            format!("organization {org:?}, purpose {purpose:?}"),
        )
    }

    fn build(kind: u8, org: &str, second: &str, description: String) -> Aad {
        let mut bytes = b"tessera-aad-v1\0".to_vec();
        bytes.push(kind);
        push_field(&mut bytes, org.as_bytes());
        push_field(&mut bytes, second.as_bytes());
        Aad { bytes, description }
    }

    /// A human description of the place, used in error messages.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl fmt::Debug for Aad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aad({})", self.description)
    }
}

/// A per-organization data key. It never leaves the process unwrapped.
pub struct DataKey {
    id: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl DataKey {
    /// A fresh random data key with the given id (ids count up per organization from 1).
    pub fn generate(id: u32) -> Result<DataKey, CryptoError> {
        Ok(DataKey {
            id,
            key: random_key()?,
        })
    }

    /// The key id written into every value it seals.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({}, [secret])", self.id)
    }
}

/// Seals `plaintext` with `key`, bound to `aad`. See the crate documentation for the format.
pub fn seal(key: &DataKey, plaintext: &[u8], aad: &Aad) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(SEALED_VERSION);
    out.extend_from_slice(&key.id.to_be_bytes());
    let nonce = random_bytes(NONCE_LEN)?;
    let mut full_aad = out.clone();
    full_aad.extend_from_slice(&aad.bytes);
    let ct = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &full_aad,
            },
        )
        .map_err(|_| CryptoError::TooLarge)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// The data key id a sealed value names, so the caller can pick the key to [`open`] it with.
pub fn sealed_key_id(sealed: &[u8]) -> Result<u32, CryptoError> {
    if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("too short"));
    }
    if sealed[0] != SEALED_VERSION {
        return Err(CryptoError::UnsupportedVersion(sealed[0]));
    }
    Ok(u32::from_be_bytes([
        sealed[1], sealed[2], sealed[3], sealed[4],
    ]))
}

/// Opens a value sealed by [`seal`], checking it belongs to `aad`.
pub fn open(key: &DataKey, sealed: &[u8], aad: &Aad) -> Result<SecretBytes, CryptoError> {
    let key_id = sealed_key_id(sealed)?;
    if key_id != key.id {
        return Err(CryptoError::WrongContext {
            context: aad.description.clone(),
        });
    }
    let (header, rest) = sealed.split_at(HEADER_LEN);
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let mut full_aad = header.to_vec();
    full_aad.extend_from_slice(&aad.bytes);
    key.cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &full_aad,
            },
        )
        .map(SecretBytes::new)
        .map_err(|_| CryptoError::WrongContext {
            context: aad.description.clone(),
        })
}

/// The text form of a sealed value, as written in `fn::secret: {ciphertext: …}`.
pub fn to_text(sealed: &[u8]) -> String {
    STANDARD.encode(sealed)
}

/// Parses the text form written by [`to_text`].
pub fn from_text(text: &str) -> Result<Vec<u8>, CryptoError> {
    STANDARD
        .decode(text.trim())
        .map_err(|_| CryptoError::Base64)
}

/// The id of a master key: the first 8 bytes of SHA-256 over a label and the key, in hex.
/// It identifies the key without revealing it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MasterKeyId(String);

impl MasterKeyId {
    /// Reads an id as recorded in the database.
    pub fn from_recorded(s: &str) -> MasterKeyId {
        MasterKeyId(s.to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MasterKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A data key wrapped by a master key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The master key that wrapped it.
    pub master_key_id: MasterKeyId,
    /// The wrapped bytes (format in the crate documentation).
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedKey(by {})", self.master_key_id)
    }
}

/// The 32-byte key that wraps every organization's data keys.
pub struct MasterKey {
    id: MasterKeyId,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    fn from_key(key: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        let mut h = Sha256::new();
        h.update(b"tessera-master-key-id\0");
        h.update(key.as_slice());
        let id = MasterKeyId(hex::encode(&h.finalize()[..8]));
        MasterKey { id, key }
    }

    /// A fresh random master key (for `--dev` and tests).
    pub fn generate() -> Result<MasterKey, CryptoError> {
        Ok(MasterKey::from_key(random_key()?))
    }

    /// Parses the standard base64 of 32 bytes, as given in `TESSERA_MASTER_KEY`.
    pub fn from_base64(text: &str) -> Result<MasterKey, CryptoError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| CryptoError::InvalidMasterKey("not valid base64"))?,
        );
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidMasterKey("not 32 bytes long"))?;
        Ok(MasterKey::from_key(Zeroizing::new(key)))
    }

    /// Reads a key file holding the base64 text (surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<MasterKey, CryptoError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CryptoError::KeyFile {
                path: path.display().to_string(),
                source,
            }
        })?);
        MasterKey::from_base64(&text)
    }

    /// The base64 text of the key, to write a key file.
    pub fn to_base64(&self) -> SecretString {
        SecretString::new(STANDARD.encode(self.key.as_slice()))
    }

    /// The key's id, recorded beside every data key it wraps.
    pub fn id(&self) -> &MasterKeyId {
        &self.id
    }

    fn wrap_aad(&self, org: &str, key_id: u32) -> Vec<u8> {
        let mut aad = b"tessera-wrap-v1\0".to_vec();
        push_field(&mut aad, org.as_bytes());
        aad.extend_from_slice(&key_id.to_be_bytes());
        push_field(&mut aad, self.id.0.as_bytes());
        aad
    }

    /// Wraps `data_key` of organization `org`.
    pub fn wrap(&self, org: &str, data_key: &DataKey) -> Result<WrappedKey, CryptoError> {
        let cipher = XChaCha20Poly1305::new(self.key.as_slice().into());
        let nonce = random_bytes(NONCE_LEN)?;
        let aad = self.wrap_aad(org, data_key.id);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: data_key.key.as_slice(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::TooLarge)?;
        let mut bytes = vec![WRAPPED_VERSION];
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ct);
        Ok(WrappedKey {
            master_key_id: self.id.clone(),
            bytes,
        })
    }

    /// Unwraps data key `key_id` of organization `org`.
    pub fn unwrap(
        &self,
        org: &str,
        key_id: u32,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, CryptoError> {
        let fail = || CryptoError::Unwrap {
            org: org.to_owned(),
            key_id,
            master_key_id: self.id.0.clone(),
        };
        let b = &wrapped.bytes;
        if b.len() != 1 + NONCE_LEN + KEY_LEN + TAG_LEN {
            return Err(CryptoError::Malformed(
                "wrapped data key has the wrong length",
            ));
        }
        if b[0] != WRAPPED_VERSION {
            return Err(CryptoError::UnsupportedVersion(b[0]));
        }
        if wrapped.master_key_id != self.id {
            return Err(fail());
        }
        let cipher = XChaCha20Poly1305::new(self.key.as_slice().into());
        let aad = self.wrap_aad(org, key_id);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&b[1..1 + NONCE_LEN]),
                    Payload {
                        msg: &b[1 + NONCE_LEN..],
                        aad: &aad,
                    },
                )
                .map_err(|_| fail())?,
        );
        let key: [u8; KEY_LEN] = plain.as_slice().try_into().map_err(|_| fail())?;
        Ok(DataKey {
            id: key_id,
            key: Zeroizing::new(key),
        })
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, [secret])", self.id)
    }
}

/// The master keys a running server accepts: the current one, which wraps new data keys,
/// and previous ones still accepted for unwrapping while a rotation completes.
#[derive(Debug)]
pub struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    /// A keyring with only `current`.
    pub fn new(current: MasterKey) -> Keyring {
        Keyring {
            current,
            previous: Vec::new(),
        }
    }

    /// Also accepts `key` for unwrapping.
    pub fn with_previous(mut self, key: MasterKey) -> Keyring {
        if key.id != self.current.id && self.previous.iter().all(|k| k.id != key.id) {
            self.previous.push(key);
        }
        self
    }

    /// Makes `new` the current key; the old current key stays accepted for unwrapping.
    pub fn rotate(&mut self, new: MasterKey) {
        if new.id == self.current.id {
            return;
        }
        self.previous.retain(|k| k.id != new.id);
        let old = std::mem::replace(&mut self.current, new);
        self.previous.insert(0, old);
    }

    /// Whether a master key id is accepted.
    pub fn accepts(&self, id: &MasterKeyId) -> bool {
        self.ids().into_iter().any(|k| k == id)
    }

    /// The key that wraps new data keys.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Every accepted master key id, current first.
    pub fn ids(&self) -> Vec<&MasterKeyId> {
        std::iter::once(&self.current.id)
            .chain(self.previous.iter().map(|k| &k.id))
            .collect()
    }

    /// Unwraps with whichever accepted key wrapped it.
    pub fn unwrap(
        &self,
        org: &str,
        key_id: u32,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, CryptoError> {
        let key = std::iter::once(&self.current)
            .chain(self.previous.iter())
            .find(|k| k.id == wrapped.master_key_id)
            .ok_or_else(|| CryptoError::UnknownMasterKey {
                org: org.to_owned(),
                key_id,
                master_key_id: wrapped.master_key_id.0.clone(),
            })?;
        key.unwrap(org, key_id, wrapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(id: u32) -> DataKey {
        DataKey::generate(id).unwrap()
    }

    #[test]
    fn sealed_values_follow_the_documented_layout() {
        let k = key(7);
        let sealed = seal(&k, b"hello", &Aad::environment("acme", "app/dev")).unwrap();
        assert_eq!(sealed[0], 1);
        assert_eq!(&sealed[1..5], &7u32.to_be_bytes());
        assert_eq!(sealed.len(), 1 + 4 + 24 + 5 + 16);
        assert_eq!(sealed_key_id(&sealed).unwrap(), 7);
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let k = key(1);
        let aad = Aad::environment("acme", "app/dev");
        assert_ne!(seal(&k, b"x", &aad).unwrap(), seal(&k, b"x", &aad).unwrap());
    }

    #[test]
    fn ciphertext_moved_to_another_environment_fails_clearly() {
        let k = key(1);
        let sealed = seal(&k, b"s3cret", &Aad::environment("acme", "app/dev")).unwrap();
        let err = open(&k, &sealed, &Aad::environment("acme", "app/prod")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("does not belong to"), "{msg}");
        assert!(msg.contains("app/prod"), "{msg}");
        assert!(!msg.contains("s3cret"));
        assert!(open(&k, &sealed, &Aad::environment("other", "app/dev")).is_err());
        assert!(open(&k, &sealed, &Aad::purpose("acme", "app/dev")).is_err());
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let k = key(1);
        let sealed = seal(&k, b"v", &Aad::environment("ab", "c/d")).unwrap();
        assert!(open(&k, &sealed, &Aad::environment("a", "bc/d")).is_err());
    }

    #[test]
    fn wrong_key_and_tampering_fail_cleanly() {
        let k = key(1);
        let aad = Aad::environment("acme", "app/dev");
        let sealed = seal(&k, b"value", &aad).unwrap();
        assert!(matches!(
            open(&key(1), &sealed, &aad),
            Err(CryptoError::WrongContext { .. })
        ));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(
                open(&k, &t, &aad).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
        for n in 0..sealed.len() {
            assert!(open(&k, &sealed[..n], &aad).is_err());
        }
        let mut v2 = sealed.clone();
        v2[0] = 2;
        assert!(matches!(
            open(&k, &v2, &aad),
            Err(CryptoError::UnsupportedVersion(2))
        ));
    }

    #[test]
    fn text_form_round_trips_and_rejects_garbage() {
        let k = key(3);
        let aad = Aad::purpose("acme", "open-session");
        let sealed = seal(&k, b"{}", &aad).unwrap();
        let text = to_text(&sealed);
        assert_eq!(from_text(&text).unwrap(), sealed);
        assert!(matches!(from_text("not base64!"), Err(CryptoError::Base64)));
    }

    #[test]
    fn master_keys_parse_from_base64_and_files() {
        let mk = MasterKey::generate().unwrap();
        let text = mk.to_base64();
        let again = MasterKey::from_base64(text.expose()).unwrap();
        assert_eq!(again.id(), mk.id());
        assert_eq!(
            format!("{mk:?}"),
            format!("MasterKey({}, [secret])", mk.id())
        );
        let dir = std::env::temp_dir().join(format!("tessera-mk-{}", std::process::id()));
        std::fs::write(&dir, format!("{}\n", text.expose())).unwrap();
        assert_eq!(MasterKey::from_file(&dir).unwrap().id(), mk.id());
        std::fs::remove_file(&dir).unwrap();
        assert!(matches!(
            MasterKey::from_base64("abc"),
            Err(CryptoError::InvalidMasterKey(_))
        ));
        assert!(MasterKey::from_base64("AAAA").is_err());
        assert!(MasterKey::from_file(Path::new("/nonexistent/key")).is_err());
    }

    #[test]
    fn data_keys_wrap_and_unwrap_only_with_their_master_key_and_org() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let dk = key(4);
        let wrapped = old.wrap("acme", &dk).unwrap();
        assert_eq!(&wrapped.master_key_id, old.id());
        let un = old.unwrap("acme", 4, &wrapped).unwrap();
        let aad = Aad::environment("acme", "a/b");
        let sealed = seal(&dk, b"x", &aad).unwrap();
        assert_eq!(open(&un, &sealed, &aad).unwrap().expose(), b"x");
        assert!(old.unwrap("other", 4, &wrapped).is_err());
        assert!(old.unwrap("acme", 5, &wrapped).is_err());
        assert!(matches!(
            new.unwrap("acme", 4, &wrapped),
            Err(CryptoError::Unwrap { .. })
        ));

        // During a rotation the keyring accepts both keys.
        let ring = Keyring::new(MasterKey::from_base64(new.to_base64().expose()).unwrap())
            .with_previous(old);
        assert!(ring.unwrap("acme", 4, &wrapped).is_ok());
        let rewrapped = ring
            .current()
            .wrap("acme", &ring.unwrap("acme", 4, &wrapped).unwrap());
        assert!(ring.unwrap("acme", 4, &rewrapped.unwrap()).is_ok());
        let only_new = Keyring::new(new);
        assert!(matches!(
            only_new.unwrap("acme", 4, &wrapped),
            Err(CryptoError::UnknownMasterKey { .. })
        ));
    }

    proptest! {
        #[test]
        fn seal_open_round_trips(plain in proptest::collection::vec(any::<u8>(), 0..512),
                                 org in "[a-z]{3,10}", env in "[a-z]{1,8}/[a-z]{1,8}",
                                 id in any::<u32>()) {
            let k = key(id);
            let aad = Aad::environment(&org, &env);
            let sealed = seal(&k, &plain, &aad).unwrap();
            let opened = open(&k, &sealed, &aad).unwrap();
            prop_assert_eq!(opened.expose(), &plain[..]);
            let text = to_text(&sealed);
            let again = open(&k, &from_text(&text).unwrap(), &aad).unwrap();
            prop_assert_eq!(again.expose(), &plain[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let k = key(1);
            prop_assert!(open(&k, &bytes, &Aad::purpose("acme", "x")).is_err());
        }
    }
}
