//! The on-disk format of `secrets.enc` and the primitives that protect it:
//! AES-256-GCM per entry, argon2id for a passphrase-derived master key.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::TryRngCore as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::SecretError;
use super::kdf_memory::KdfMemory;

/// Length of the AES-256 key.
pub(crate) const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const SALT_LEN: usize = 16;

/// Current `secrets.enc` format version; a file with a larger one was written
/// by a newer gateway and is refused rather than silently rewritten.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// The associated data of the key-check record. Entry AAD always starts with
/// `ENTRY_AAD_PREFIX`, so the check record can never be passed off as an entry.
const CHECK_AAD: &[u8] = b"llm-gateway/secrets.enc/key-check";
const CHECK_PLAINTEXT: &[u8] = b"llm-gateway key check v1";
const ENTRY_AAD_PREFIX: &[u8] = b"llm-gateway/secrets.enc/entry:";

/// A master key; wiped from memory on drop.
pub(crate) type MasterKey = Zeroizing<[u8; KEY_LEN]>;

/// `secrets.enc`: a header saying how the key is obtained, a record that
/// proves the key is right, and one AEAD record per secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SecretsFile {
    pub version: u32,
    pub kdf: Kdf,
    /// Absent only in hand-made files; without it a wrong key is detected
    /// entry by entry instead of at open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Sealed>,
    #[serde(default)]
    pub entries: BTreeMap<String, Sealed>,
}

/// Where the master key comes from. Recorded in the file so that a switch
/// between `master.key` and `LLM_GATEWAY_MASTER_KEY` gives a clear error
/// instead of a generic decryption failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Kdf {
    /// 32 random bytes in `master.key`.
    KeyFile,
    /// argon2id over `LLM_GATEWAY_MASTER_KEY`; parameters are stored so they
    /// can be raised later without breaking existing files.
    Argon2id { salt: String, m_cost: u32, t_cost: u32, p_cost: u32 },
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KdfParams {
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// OWASP's recommended argon2id setting (19 MiB, 2 passes), which is also
    /// the argon2 crate's default.
    fn default() -> Self {
        KdfParams {
            m_cost: argon2::Params::DEFAULT_M_COST,
            t_cost: argon2::Params::DEFAULT_T_COST,
            p_cost: argon2::Params::DEFAULT_P_COST,
        }
    }
}

/// Upper bounds for parameters read from a file, so a damaged or hostile
/// file cannot make the gateway allocate gigabytes or spin for minutes.
const MAX_M_COST: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

/// One AEAD record: base64 nonce and base64 ciphertext (with the GCM tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

/// Why a record could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// Bad base64 or wrong nonce length: the file is damaged.
    Malformed(String),
    /// The tag did not verify: wrong key, tampering, or a swapped entry.
    Auth,
}

/// Fills `N` bytes from the OS random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut buf = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| SecretError::Crypto { reason: format!("OS random number generator failed: {e}") })?;
    Ok(buf)
}

/// A fresh random master key.
pub(crate) fn random_key() -> Result<MasterKey, SecretError> {
    Ok(Zeroizing::new(random_bytes::<KEY_LEN>()?))
}

/// A `Kdf` header with a fresh salt.
pub(crate) fn new_argon2_kdf(params: KdfParams) -> Result<Kdf, SecretError> {
    Ok(Kdf::Argon2id {
        salt: B64.encode(random_bytes::<SALT_LEN>()?),
        m_cost: params.m_cost,
        t_cost: params.t_cost,
        p_cost: params.p_cost,
    })
}

/// Derives the master key for an argon2id header. `Corrupt`-style problems
/// with the header are reported as `Err(String)` for the caller to wrap with
/// the file path.
pub(crate) fn derive_key(passphrase: &[u8], kdf: &Kdf) -> Result<MasterKey, String> {
    let Kdf::Argon2id { salt, m_cost, t_cost, p_cost } = kdf else {
        return Err("the file's key is not derived from a passphrase".into());
    };
    if *m_cost > MAX_M_COST || *t_cost > MAX_T_COST || *p_cost > MAX_P_COST {
        return Err("argon2id parameters are out of the accepted range".into());
    }
    let salt = B64.decode(salt).map_err(|_| "the argon2id salt is not valid base64".to_string())?;
    let params = argon2::Params::new(*m_cost, *t_cost, *p_cost, Some(KEY_LEN))
        .map_err(|e| format!("invalid argon2id parameters: {e}"))?;
    // The working memory is mapped for this derivation alone and unmapped when it returns (kdf_memory.rs).
    let memory = KdfMemory::new(params.block_count())
        .map_err(|e| format!("cannot get {} KiB of memory for argon2id: {e}", params.block_count()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key: MasterKey = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into_with_memory(passphrase, &salt, &mut key[..], memory)
        .map_err(|e| format!("argon2id key derivation failed: {e}"))?;
    Ok(key)
}

fn cipher(key: &MasterKey) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key[..]))
}

fn entry_aad(id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(ENTRY_AAD_PREFIX.len() + id.len());
    aad.extend_from_slice(ENTRY_AAD_PREFIX);
    aad.extend_from_slice(id.as_bytes());
    aad
}

fn seal(key: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, SecretError> {
    // Random 96-bit nonces are safe here: a file holds at most a few
    // thousand records over its life, far below GCM's ~2^32 random-nonce bound.
    let nonce_bytes = random_bytes::<NONCE_LEN>()?;
    let ciphertext = cipher(key)
        .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plaintext, aad })
        .map_err(|_| SecretError::Crypto { reason: "AES-GCM encryption failed".into() })?;
    Ok(Sealed { nonce: B64.encode(nonce_bytes), ciphertext: B64.encode(ciphertext) })
}

fn open(key: &MasterKey, aad: &[u8], sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let nonce = B64.decode(&sealed.nonce).map_err(|_| OpenError::Malformed("nonce is not valid base64".into()))?;
    if nonce.len() != NONCE_LEN {
        return Err(OpenError::Malformed(format!("nonce has {} bytes, expected {NONCE_LEN}", nonce.len())));
    }
    let ciphertext =
        B64.decode(&sealed.ciphertext).map_err(|_| OpenError::Malformed("ciphertext is not valid base64".into()))?;
    cipher(key)
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| OpenError::Auth)
}

/// Encrypts one secret, bound to its id.
pub(crate) fn seal_entry(key: &MasterKey, id: &str, value: &str) -> Result<Sealed, SecretError> {
    seal(key, &entry_aad(id), value.as_bytes())
}

/// Decrypts one secret; fails with `Auth` if the record belongs to another id.
pub(crate) fn open_entry(key: &MasterKey, id: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    open(key, &entry_aad(id), sealed)
}

/// The record that lets `open` tell a wrong key from a damaged entry.
pub(crate) fn seal_check(key: &MasterKey) -> Result<Sealed, SecretError> {
    seal(key, CHECK_AAD, CHECK_PLAINTEXT)
}

/// Verifies the key-check record.
pub(crate) fn verify_check(key: &MasterKey, sealed: &Sealed) -> Result<(), OpenError> {
    let plain = open(key, CHECK_AAD, sealed)?;
    if plain.as_slice() == CHECK_PLAINTEXT { Ok(()) } else { Err(OpenError::Auth) }
}

/// Encodes a key for `master.key`.
pub(crate) fn encode_key(key: &MasterKey) -> Zeroizing<String> {
    let mut s = Zeroizing::new(B64.encode(&key[..]));
    s.push('\n');
    s
}

/// Decodes `master.key`; `None` if it is not base64 of exactly 32 bytes.
pub(crate) fn decode_key(text: &str) -> Option<MasterKey> {
    let bytes = Zeroizing::new(B64.decode(text.trim()).ok()?);
    let arr: [u8; KEY_LEN] = bytes.as_slice().try_into().ok()?;
    Some(Zeroizing::new(arr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip_and_aad_binding() {
        let key = random_key().unwrap();
        let sealed = seal_entry(&key, "a", "value-a").unwrap();
        assert_eq!(open_entry(&key, "a", &sealed).unwrap().as_slice(), b"value-a");
        assert!(matches!(open_entry(&key, "b", &sealed), Err(OpenError::Auth)));
        let other = random_key().unwrap();
        assert!(matches!(open_entry(&other, "a", &sealed), Err(OpenError::Auth)));
        // The check record can't be read as an entry, nor an entry as the check.
        let check = seal_check(&key).unwrap();
        assert!(verify_check(&key, &check).is_ok());
        assert!(verify_check(&key, &sealed).is_err());
    }

    #[test]
    fn nonces_are_fresh() {
        let key = random_key().unwrap();
        let a = seal_entry(&key, "a", "same").unwrap();
        let b = seal_entry(&key, "a", "same").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn key_encoding_round_trip_and_rejects_bad_lengths() {
        let key = random_key().unwrap();
        let text = encode_key(&key);
        assert_eq!(decode_key(&text).unwrap()[..], key[..]);
        assert!(decode_key("not base64!").is_none());
        assert!(decode_key(&B64.encode([0u8; 16])).is_none());
    }

    #[test]
    fn derive_key_is_deterministic_and_salted() {
        let params = KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 };
        let kdf = new_argon2_kdf(params).unwrap();
        let k1 = derive_key(b"pass", &kdf).unwrap();
        let k2 = derive_key(b"pass", &kdf).unwrap();
        assert_eq!(k1[..], k2[..]);
        assert_ne!(derive_key(b"other", &kdf).unwrap()[..], k1[..]);
        let kdf2 = new_argon2_kdf(params).unwrap();
        assert_ne!(derive_key(b"pass", &kdf2).unwrap()[..], k1[..]);
        let huge = Kdf::Argon2id { salt: B64.encode([0u8; 16]), m_cost: u32::MAX, t_cost: 1, p_cost: 1 };
        assert!(derive_key(b"pass", &huge).is_err());
    }
}
