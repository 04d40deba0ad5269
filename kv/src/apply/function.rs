//! Redis 7 functions at apply: FUNCTION LOAD, DELETE, FLUSH, RESTORE and
//! FCALL (see `crate::script::library` for what the group stores).
//!
//! Libraries are replicated state: every replica loads a library's code
//! into its own VM, which is deterministic (the load API cannot read the
//! data), and a VM that does not have a library's current code (a
//! restarted replica, one that installed a snapshot) loads it from the
//! store when a function of it is first called.

use bytes::Bytes;
use storage::keyspace::kv_meta;

use super::script::{in_txn, Run};
use super::txn::Txn;
use super::{Context, Fail, OpResult};
use crate::command::RestorePolicy;
use crate::error::CommandError;
use crate::reply::Reply;
use crate::script::engine::{Engine, Registered};
use crate::script::library::{self, StoredFunction, StoredLibrary, FLAG_ORDER};
use crate::script::pace::Code;

fn error(text: String) -> Fail {
    Fail::User(CommandError::Other(format!("ERR {text}")))
}

/// The stored library `name`, if any.
fn stored(txn: &Txn<'_>, name: &[u8]) -> Result<Option<StoredLibrary>, Fail> {
    let bytes = txn.get_meta(&kv_meta::library(txn.shard, name))?;
    Ok(bytes.and_then(|bytes| StoredLibrary::decode(&bytes)))
}

/// The library function `name` belongs to, if any.
fn library_of(txn: &Txn<'_>, name: &[u8]) -> Result<Option<Vec<u8>>, Fail> {
    Ok(txn.get_meta(&kv_meta::function(txn.shard, name))?)
}

/// Loads `code` into `engine`: the library to store, or Redis's error.
fn load_into(engine: &mut Engine, code: &Bytes, budget: u64) -> Result<StoredLibrary, Fail> {
    let metadata = library::metadata(code)?;
    let registered = engine.load_library(&metadata.name, &metadata.body, budget)?;
    if registered.is_empty() {
        engine.forget_library(&metadata.name);
        return Err(error("No functions registered".into()));
    }
    let functions = registered
        .into_iter()
        .map(|Registered { name, description, mut flags }| {
            flags.sort_by_key(|flag| FLAG_ORDER.iter().position(|known| known == flag));
            flags.dedup();
            StoredFunction { name, description, flags }
        })
        .collect();
    Ok(StoredLibrary { name: metadata.name, code: code.clone(), functions })
}

/// Stores `library`, and its functions' index entries.
fn put(txn: &mut Txn<'_>, library: &StoredLibrary) {
    for function in &library.functions {
        txn.put_meta(kv_meta::function(txn.shard, function.name.as_bytes()), Some(library.name.as_bytes().to_vec()));
    }
    txn.put_meta(kv_meta::library(txn.shard, library.name.as_bytes()), Some(library.encode()));
}

/// Removes `library` and its functions' index entries.
fn remove(txn: &mut Txn<'_>, library: &StoredLibrary) {
    for function in &library.functions {
        txn.put_meta(kv_meta::function(txn.shard, function.name.as_bytes()), None);
    }
    txn.put_meta(kv_meta::library(txn.shard, library.name.as_bytes()), None);
}

/// The first of `library`'s functions another library (not in
/// `replaced`) already has.
fn collision(txn: &Txn<'_>, library: &StoredLibrary, replaced: &[String]) -> Result<Option<String>, Fail> {
    for function in &library.functions {
        if let Some(owner) = library_of(txn, function.name.as_bytes())? {
            if !replaced.iter().any(|name| name.as_bytes() == owner) {
                return Ok(Some(function.name.clone()));
            }
        }
    }
    Ok(None)
}

fn engine<'e>(ctx: &'e mut Context<'_>) -> &'e mut Engine {
    ctx.engine.get_or_insert_with(Engine::new)
}

/// FUNCTION LOAD [REPLACE].
pub(super) fn load(txn: &mut Txn<'_>, ctx: &mut Context<'_>, code: Bytes, replace: bool, budget: u64) -> OpResult {
    let metadata = library::metadata(&code)?;
    let old = stored(txn, metadata.name.as_bytes())?;
    if old.is_some() && !replace {
        return Err(error(format!("Library '{}' already exists", metadata.name)));
    }
    let library = load_into(engine(ctx), &code, budget)?;
    if let Some(function) = collision(txn, &library, std::slice::from_ref(&library.name))? {
        // The VM reloads the stored code (if any) when next called.
        engine(ctx).forget_library(&library.name);
        return Err(error(format!("Function {function} already exists")));
    }
    if let Some(old) = &old {
        remove(txn, old);
    }
    put(txn, &library);
    Ok(Reply::bulk(library.name))
}

/// FUNCTION DELETE.
pub(super) fn delete(txn: &mut Txn<'_>, ctx: &mut Context<'_>, name: Bytes) -> OpResult {
    let Some(library) = stored(txn, &name)? else { return Err(error("Library not found".into())) };
    remove(txn, &library);
    engine(ctx).forget_library(&library.name);
    Ok(Reply::ok())
}

/// FUNCTION FLUSH.
pub(super) fn flush(txn: &mut Txn<'_>, ctx: &mut Context<'_>) -> OpResult {
    for (start, end) in [kv_meta::libraries(txn.shard), kv_meta::functions(txn.shard)] {
        txn.delete_meta_range(&start, &end)?;
    }
    engine(ctx).forget_libraries();
    Ok(Reply::ok())
}

/// FUNCTION RESTORE: every library of the payload loads, then joins the
/// stored ones by `policy`, or nothing changes.
pub(super) fn restore(
    txn: &mut Txn<'_>,
    ctx: &mut Context<'_>,
    payload: Bytes,
    policy: RestorePolicy,
    budget: u64,
) -> OpResult {
    let codes = crate::dump::decode_functions(&payload).map_err(error)?;
    let mut libraries: Vec<StoredLibrary> = Vec::with_capacity(codes.len());
    let outcome = (|| {
        for code in &codes {
            let library = load_into(engine(ctx), code, budget)?;
            if libraries.iter().any(|other| other.name == library.name) {
                return Err(error(format!("Library {} already exists", library.name)));
            }
            let taken = library
                .functions
                .iter()
                .find(|f| libraries.iter().any(|other| other.functions.iter().any(|g| g.name == f.name)));
            if let Some(function) = taken {
                return Err(error(format!("Function {} already exists", function.name)));
            }
            libraries.push(library);
        }
        if policy == RestorePolicy::Flush {
            return Ok(Vec::new());
        }
        let mut replaced = Vec::new();
        for library in &libraries {
            if let Some(old) = stored(txn, library.name.as_bytes())? {
                if policy == RestorePolicy::Append {
                    return Err(error(format!("Library {} already exists", library.name)));
                }
                replaced.push(old);
            }
        }
        let replaced_names: Vec<String> = replaced.iter().map(|old| old.name.clone()).collect();
        for library in &libraries {
            if let Some(function) = collision(txn, library, &replaced_names)? {
                return Err(error(format!("Function {function} already exists")));
            }
        }
        Ok(replaced)
    })();
    let replaced = match outcome {
        Ok(replaced) => replaced,
        Err(failure) => {
            // The VM reloads what is stored when next called.
            for library in &libraries {
                engine(ctx).forget_library(&library.name);
            }
            return Err(failure);
        }
    };
    if policy == RestorePolicy::Flush {
        for (start, end) in [kv_meta::libraries(txn.shard), kv_meta::functions(txn.shard)] {
            txn.delete_meta_range(&start, &end)?;
        }
    }
    for old in &replaced {
        remove(txn, old);
    }
    for library in &libraries {
        put(txn, library);
    }
    Ok(Reply::ok())
}

/// FCALL (and FCALL_RO inside MULTI).
pub(super) fn fcall(txn: &mut Txn<'_>, ctx: &mut Context<'_>, db: u8, name: Bytes, run: Run) -> OpResult {
    let (library, function) = find(txn, &name)?;
    if run.read_only && function.writes() {
        return Err(library::read_only_refusal().into());
    }
    let body = library::metadata(&library.code)?.body;
    in_txn(txn, ctx, db, Code::Function(function.name.clone()), !function.writes(), run.seed, |host, engine| {
        let callback = engine.function(&library.name, &body, &function.name, run.budget)?;
        Ok(engine.run_function(&function.name, &callback, run.inputs(), host))
    })
}

/// The stored library and function of `name`, or `Function not found`.
fn find(txn: &Txn<'_>, name: &[u8]) -> Result<(StoredLibrary, StoredFunction), Fail> {
    let not_found = || error("Function not found".into());
    let owner = library_of(txn, name)?.ok_or_else(not_found)?;
    let library = stored(txn, &owner)?.ok_or_else(not_found)?;
    let function = library.functions.iter().find(|f| f.name.as_bytes() == name).cloned().ok_or_else(not_found)?;
    Ok((library, function))
}
