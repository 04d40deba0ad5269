//! Write semantics of the HyperLogLog commands (PFADD, PFCOUNT of one key,
//! PFMERGE, PFDEBUG), over sketches stored as strings in Redis's layout
//! (`crate::hll`).

use bytes::Bytes;

use super::txn::Txn;
use super::OpResult;
use crate::error::CommandError;
use crate::hll;
use crate::notify::class::STRING;
use crate::record::{KeyType, Record};
use crate::reply::Reply;

/// A stored sketch's bytes and its key's expiry (kept by every change).
type Stored = (Vec<u8>, Option<u64>);

/// The sketch at `key`; `None` if absent.
fn sketch(txn: &mut Txn<'_>, db: u8, key: &Bytes) -> Result<Option<Stored>, super::Fail> {
    match txn.get(db, key)? {
        None => Ok(None),
        Some(record) if record.kind != KeyType::String => Err(CommandError::WrongType.into()),
        Some(record) => {
            hll::check(&record.value).map_err(CommandError::from)?;
            Ok(Some((record.value.to_vec(), record.expire_at_ms)))
        }
    }
}

fn store(txn: &mut Txn<'_>, db: u8, key: &Bytes, sketch: Vec<u8>, expire_at_ms: Option<u64>) -> OpResult {
    let record = Record { kind: KeyType::String, expire_at_ms, modified: 0, value: Bytes::from(sketch) };
    txn.put(db, key, record)?;
    Ok(Reply::ok())
}

pub(super) fn pfadd(txn: &mut Txn<'_>, db: u8, key: Bytes, elements: Vec<Bytes>, sparse_max: u64) -> OpResult {
    let (mut value, expire_at_ms, mut updated) = match sketch(txn, db, &key)? {
        Some((value, expire_at_ms)) => (value, expire_at_ms, false),
        None => (hll::empty(), None, true),
    };
    for element in &elements {
        updated |= hll::add(&mut value, element, sparse_max).map_err(CommandError::from)?;
    }
    if !updated {
        return Ok(Reply::Int(0));
    }
    hll::invalidate(&mut value);
    store(txn, db, &key, value, expire_at_ms)?;
    txn.notify(STRING, "pfadd", db, &key);
    Ok(Reply::Int(1))
}

pub(super) fn pfcount(txn: &mut Txn<'_>, db: u8, key: Bytes) -> OpResult {
    let Some((mut value, expire_at_ms)) = sketch(txn, db, &key)? else {
        txn.key_miss(db, &key);
        return Ok(Reply::Int(0));
    };
    let (card, cached_now) = hll::count(&mut value).map_err(CommandError::from)?;
    if cached_now {
        store(txn, db, &key, value, expire_at_ms)?;
    }
    Ok(Reply::Int(card as i64))
}

pub(super) fn pfmerge(txn: &mut Txn<'_>, db: u8, dest: Bytes, sources: Vec<Bytes>, sparse_max: u64) -> OpResult {
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut dense = false;
    let mut target = None;
    // The destination is merged first, as one of the inputs (and, as in
    // Redis, looked up to be read like them).
    for (n, key) in std::iter::once(&dest).chain(&sources).enumerate() {
        let Some((value, expire_at_ms)) = sketch(txn, db, key)? else {
            txn.key_miss(db, key);
            continue;
        };
        dense |= hll::is_dense(&value);
        hll::merge(&mut max, &value).map_err(CommandError::from)?;
        if n == 0 {
            target = Some((value, expire_at_ms));
        }
    }
    let (mut value, expire_at_ms) = target.unwrap_or_else(|| (hll::empty(), None));
    if dense {
        hll::to_dense(&mut value).map_err(CommandError::from)?;
    }
    hll::raise_all(&mut value, &max, sparse_max);
    hll::invalidate(&mut value);
    store(txn, db, &dest, value, expire_at_ms)?;
    // PFMERGE reports itself as `pfadd`, as in Redis.
    txn.notify(STRING, "pfadd", db, &dest);
    Ok(Reply::ok())
}

pub(super) fn pfdebug(txn: &mut Txn<'_>, db: u8, subcommand: Bytes, key: Bytes) -> OpResult {
    let name = String::from_utf8_lossy(&subcommand).into_owned();
    let Some((mut value, expire_at_ms)) = sketch(txn, db, &key)? else {
        return Err(CommandError::Other("ERR The specified key does not exist".into()).into());
    };
    match name.to_ascii_lowercase().as_str() {
        "getreg" => {
            let converted = !hll::is_dense(&value);
            if converted {
                hll::to_dense(&mut value).map_err(CommandError::from)?;
            }
            let registers = hll::dense_registers(&value).into_iter().map(|r| Reply::Int(r.into())).collect();
            if converted {
                store(txn, db, &key, value, expire_at_ms)?;
            }
            Ok(Reply::Array(registers))
        }
        "decode" if hll::is_dense(&value) => Err(CommandError::Other("ERR HLL encoding is not sparse".into()).into()),
        "decode" => Ok(Reply::bulk(hll::decode(&value))),
        "encoding" => Ok(Reply::Status(if hll::is_dense(&value) { "dense" } else { "sparse" }.into())),
        "todense" if hll::is_dense(&value) => Ok(Reply::Int(0)),
        "todense" => {
            hll::to_dense(&mut value).map_err(CommandError::from)?;
            store(txn, db, &key, value, expire_at_ms)?;
            Ok(Reply::Int(1))
        }
        _ => Err(CommandError::Other(format!("ERR Unknown PFDEBUG subcommand '{name}'")).into()),
    }
}
