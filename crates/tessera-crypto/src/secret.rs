//! Plaintext holders that redact themselves and zero their memory on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret text: prints as `[secret]`, is zeroed on drop, and is read only through
/// [`SecretString::expose`].
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps plaintext.
    pub fn new(plaintext: impl Into<String>) -> Self {
        SecretString(plaintext.into())
    }

    /// The plaintext. Every call site is a place where a secret leaves its wrapper: keep them few.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The plaintext length in bytes (not secret: ciphertext reveals it too).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.to_owned())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

/// Secret bytes: prints as `[secret]`, is zeroed on drop, and is read only through
/// [`SecretBytes::expose`].
#[derive(Clone, Default, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps plaintext bytes.
    pub fn new(plaintext: impl Into<Vec<u8>>) -> Self {
        SecretBytes(plaintext.into())
    }

    /// The plaintext bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Converts to text when the bytes are UTF-8; the bytes are zeroed either way.
    pub fn into_secret_string(mut self) -> Result<SecretString, crate::CryptoError> {
        let bytes = std::mem::take(&mut self.0);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(SecretString(s)),
            Err(e) => {
                let mut bytes = e.into_bytes();
                bytes.zeroize();
                Err(crate::CryptoError::NotUtf8)
            }
        }
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_redact_in_debug_and_display() {
        let s = SecretString::new("hunter2");
        assert_eq!(format!("{s:?}"), "[secret]");
        assert_eq!(format!("{s}"), "[secret]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([secret])");
        assert_eq!(s.expose(), "hunter2");
        let b = SecretBytes::new(b"hunter2".to_vec());
        assert_eq!(format!("{b:?} {b}"), "[secret] [secret]");
        assert_eq!(b.into_secret_string().unwrap().expose(), "hunter2");
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let b = SecretBytes::new(vec![0xff, 0xfe]);
        assert!(matches!(
            b.into_secret_string(),
            Err(crate::CryptoError::NotUtf8)
        ));
    }
}
