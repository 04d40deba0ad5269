//! One Lua 5.1 VM with Redis's sandbox (`sandbox.lua`), its compiled
//! scripts, and the run of one script against a [`Host`].
//!
//! Determinism: a run's only inputs are the script, its KEYS and ARGV,
//! the replies of its commands (which the host computes from the log),
//! the entry's seed (math.random) and the instruction budget. The VM
//! keeps nothing a script can change between runs (the sandbox's
//! invariant), so a replica that restarted, whose VM is new, runs every
//! later script exactly as the others do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{FromLua, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, Variadic, VmState};

use super::convert::{lua_error_text, reply_to_lua, value_to_reply};
use super::pace::Pace;
use super::rand48::Rand48;
use super::{bit, cjson, cmsgpack, lua_struct, Sha};
use crate::error::CommandError;
use crate::reply::Reply;

/// What runs a script's `redis.call`s: the state machine's txn at apply,
/// a snapshot on the read path.
pub(crate) trait Host {
    /// Runs one command (its name and arguments, as the script passed
    /// them); a refusal or a failure is an error reply.
    fn call(&mut self, words: Vec<Bytes>) -> Reply;
}

/// A run's inputs besides the script.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    /// math.random's seed.
    pub seed: u64,
    /// The Lua instructions the script may run.
    pub budget: u64,
}

/// How often the instruction hook runs, in VM instructions.
const HOOK_PERIOD: u32 = 1000;

/// Redis's version as scripts see it (`redis.REDIS_VERSION`).
const VERSION: &str = crate::REDIS_VERSION;

/// A Lua VM ready to run scripts.
pub(crate) struct Engine {
    lua: Lua,
    /// `sandbox.lua`'s `run(script, keys, argv)`.
    run: Function,
    /// The running script's `command` and `resp`.
    state: Table,
    /// math.random's generator, reseeded for every run.
    random: Arc<Rand48>,
    /// Compiled scripts by digest (Redis's `f_<sha>` functions).
    compiled: HashMap<Sha, Function>,
    /// `sandbox.lua`'s `load_library(chunk)` and `run_function(callback,
    /// keys, args)`, and the globals libraries run with.
    load: Function,
    run_function: Function,
    function_globals: Table,
    /// The libraries this VM has loaded, by name.
    libraries: HashMap<String, LoadedLibrary>,
    /// Which thread runs the next script (never what it computes).
    pub(crate) pace: Pace,
}

/// The registry name of the table of the sandbox's raising functions
/// (`sandbox.lua`'s `raising`), which [`raising`] calls by position.
const RAISING: &std::ffi::CStr = c"seshat.raising";

/// The functions of `redis.*` that raise errors (`call`, `setresp`,
/// `set_repl`, `log`, `sha1hex`), as C functions: a script's `return
/// redis.call(…)` then keeps the script's frame (Lua 5.1 does not
/// tail-call a C function), which is where the error says it happened,
/// as in Redis. Each runs the sandbox's Lua function number `N` and raises
/// its result if that is an error table.
unsafe extern "C-unwind" fn raising<const N: i32>(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: plain Lua C API use on the state Lua called us with; the
    // stack holds the call's arguments and room for `LUA_MINSTACK` more.
    unsafe {
        let args = ffi::lua_gettop(state);
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, RAISING.as_ptr());
        ffi::lua_rawgeti(state, -1, N.into());
        ffi::lua_remove(state, -2);
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, args, 1);
        if ffi::lua_istable(state, -1) != 0 {
            ffi::lua_getfield(state, -1, c"err".as_ptr());
            let is_error = ffi::lua_isnil(state, -1) == 0;
            ffi::lua_pop(state, 1);
            if is_error {
                ffi::lua_error(state);
            }
        }
        1
    }
}

/// Why a script could not be compiled: Redis's reply.
pub(crate) fn compile_error(message: &str) -> CommandError {
    CommandError::Other(format!("ERR Error compiling script (new function): {message}"))
}

impl Engine {
    pub(crate) fn new() -> Engine {
        // SAFETY: `debug` is loaded only for the sandbox's error handler,
        // which keeps `debug.getinfo` in a local; the sandbox removes the
        // library from every table a script can reach.
        let lua = unsafe {
            Lua::unsafe_new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG, LuaOptions::new())
        };
        let random = Arc::new(Rand48::default());
        let natives = natives(&lua, random.clone()).expect("the script natives build");
        let control: Table =
            lua.load(include_str!("sandbox.lua")).set_name("=sandbox").call(natives).expect("the sandbox builds");
        let raising: Table = control.get("raising").expect("the sandbox's raising functions");
        lua.set_named_registry_value(RAISING.to_str().expect("ASCII"), raising).expect("the registry takes them");
        let globals: Table = control.get("globals").expect("the sandbox's globals");
        lua.set_globals(globals).expect("the sandbox's globals install");
        Engine {
            load: control.get("load_library").expect("the sandbox's load_library"),
            run_function: control.get("run_function").expect("the sandbox's run_function"),
            function_globals: control.get("function_globals").expect("the sandbox's function globals"),
            libraries: HashMap::new(),
            run: control.get("run").expect("the sandbox's run"),
            state: control.get("state").expect("the sandbox's state"),
            lua,
            random,
            compiled: HashMap::new(),
            pace: Pace::default(),
        }
    }

    /// Compiles `body` (whose digest is `sha`), once; the error is Redis's
    /// compile error reply.
    pub(crate) fn compile(&mut self, sha: &Sha, body: &[u8]) -> Result<Function, CommandError> {
        if let Some(function) = self.compiled.get(sha) {
            return Ok(function.clone());
        }
        let function = self
            .lua
            .load(super::shebang::code(body))
            .set_name("@user_script")
            .into_function()
            .map_err(|error| compile_error(&syntax_message(&error)))?;
        self.compiled.insert(*sha, function.clone());
        Ok(function)
    }

    /// The compiled script of digest `sha`, if this VM has it.
    pub(crate) fn compiled(&self, sha: &Sha) -> Option<Function> {
        self.compiled.get(sha).cloned()
    }

    /// Forgets every compiled script (SCRIPT FLUSH).
    pub(crate) fn flush(&mut self) {
        self.compiled.clear();
        self.lua.gc_collect().ok();
    }

    /// Runs `script` (digest `sha`) with `inputs` against `host`.
    pub(crate) fn run(&self, sha: &Sha, script: &Function, inputs: Inputs<'_>, host: &mut dyn Host) -> Reply {
        self.execute(sha, &self.run, script, inputs, host)
    }

    /// Runs function `name` (its registered `callback`) with `inputs`.
    pub(crate) fn run_function(
        &self,
        name: &str,
        callback: &Function,
        inputs: Inputs<'_>,
        host: &mut dyn Host,
    ) -> Reply {
        self.execute(&name, &self.run_function, callback, inputs, host)
    }

    /// Runs `code` through the sandbox's `runner` (`run` or
    /// `run_function`); `label` names it in errors.
    fn execute(
        &self,
        label: &dyn std::fmt::Display,
        runner: &Function,
        code: &Function,
        inputs: Inputs<'_>,
        host: &mut dyn Host,
    ) -> Reply {
        let Inputs { keys, args, seed, budget } = inputs;
        self.random.seed(seed);
        let killed = self.budget(budget);
        let result = self.lua.scope(|scope| {
            let command = scope.create_function_mut(|lua, (resp, words): (u8, Variadic<Value>)| {
                let reply = match command_words(words) {
                    Ok(words) => host.call(words),
                    Err(error) => Reply::Error(error),
                };
                reply_to_lua(lua, &reply, resp == 3)
            })?;
            self.state.raw_set("command", command)?;
            let outcome: MultiValue =
                runner.call((code.clone(), strings(&self.lua, keys)?, strings(&self.lua, args)?))?;
            self.state.raw_set("command", Value::Nil)?;
            let resp: u8 = self.state.raw_get("resp")?;
            let mut values = outcome.into_iter();
            let ok = matches!(values.next(), Some(Value::Boolean(true)));
            let value = values.next().unwrap_or(Value::Nil);
            Ok(match ok {
                true => value_to_reply(&value, resp == 3),
                false => script_error(label, &value, killed.load(Ordering::Relaxed), budget),
            })
        });
        self.end_budget();
        self.state.raw_set("command", Value::Nil).ok();
        result.unwrap_or_else(|error| {
            Reply::Error(CommandError::Other(format!("ERR Error running script {label}: {error}")))
        })
    }

    /// Counts the Lua instructions run from now on; past `budget`, every
    /// count raises an error nothing can catch, and the returned flag is
    /// set. Until [`Engine::end_budget`].
    fn budget(&self, budget: u64) -> Arc<AtomicBool> {
        let used = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let flag = killed.clone();
        let state = self.state.clone();
        let hook = move |_: &Lua, _: &mlua::debug::Debug| {
            let total = used.fetch_add(u64::from(HOOK_PERIOD), Ordering::Relaxed) + u64::from(HOOK_PERIOD);
            if total > budget {
                flag.store(true, Ordering::Relaxed);
                // The sandbox's pcall and coroutine.resume re-raise once
                // this is set, so the script cannot catch it.
                state.raw_set("killed", true)?;
                return Err(mlua::Error::runtime("script killed"));
            }
            Ok(VmState::Continue)
        };
        self.state.raw_set("killed", false).ok();
        // Global: the coroutines a script creates count too.
        self.lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_PERIOD), hook).expect("hook installs");
        killed
    }

    fn end_budget(&self) {
        self.lua.remove_hook();
        self.lua.remove_global_hook();
        self.state.raw_set("killed", false).ok();
    }

    /// Loads library `name` from `code` (the payload after its shebang
    /// line, whose line feed stays): runs it with the load API and keeps
    /// the functions it registers. The error is Redis's reply.
    pub(crate) fn load_library(
        &mut self,
        name: &str,
        code: &[u8],
        budget: u64,
    ) -> Result<Vec<Registered>, CommandError> {
        let chunk = self
            .lua
            .load(code)
            .set_name("@user_function")
            .set_environment(self.function_globals.clone())
            .into_function()
            .map_err(|error| {
                CommandError::Other(format!("ERR Error compiling function: {}", syntax_message(&error)))
            })?;
        let killed = self.budget(budget);
        let outcome: mlua::Result<(bool, Value)> = self.load.call(chunk);
        self.end_budget();
        let registering = |message: String| CommandError::Other(format!("ERR Error registering functions: {message}"));
        let (ok, value) = outcome.map_err(|error| registering(format!("ERR {}", innermost(&error))))?;
        if killed.load(Ordering::Relaxed) {
            return Err(registering("ERR FUNCTION LOAD timeout".into()));
        }
        if !ok {
            return Err(registering(load_error_text(&self.lua, &value)));
        }
        let Value::Table(list) = value else { return Err(registering("ERR no functions table".into())) };
        let mut registered = Vec::new();
        let mut functions = HashMap::new();
        for entry in list.sequence_values::<Table>() {
            let entry = entry.map_err(|error| registering(error.to_string()))?;
            let get = |field: &str| entry.raw_get::<Value>(field).unwrap_or(Value::Nil);
            let Value::String(function_name) = get("name") else { continue };
            let function_name = function_name.to_string_lossy();
            let description = match get("description") {
                Value::String(text) => Some(text.to_string_lossy()),
                _ => None,
            };
            let flags = match get("flags") {
                Value::Table(flags) => flags.sequence_values::<String>().filter_map(Result::ok).collect(),
                _ => Vec::new(),
            };
            if let Value::Function(callback) = get("callback") {
                functions.insert(function_name.clone(), callback);
            }
            registered.push(Registered { name: function_name, description, flags });
        }
        self.libraries.insert(name.to_string(), LoadedLibrary { code: Sha::of(code), functions });
        Ok(registered)
    }

    /// The callback of function `function` of library `name`, loading the
    /// library from `code` first if this VM does not have that code.
    pub(crate) fn function(
        &mut self,
        name: &str,
        code: &[u8],
        function: &str,
        budget: u64,
    ) -> Result<Function, CommandError> {
        let loaded = self.libraries.get(name).is_some_and(|library| library.code == Sha::of(code));
        if !loaded {
            self.load_library(name, code, budget)?;
        }
        self.libraries
            .get(name)
            .and_then(|library| library.functions.get(function).cloned())
            .ok_or_else(|| CommandError::Other("ERR Function not found".into()))
    }

    /// Forgets library `name` (FUNCTION DELETE, a failed REPLACE).
    pub(crate) fn forget_library(&mut self, name: &str) {
        self.libraries.remove(name);
    }

    /// Forgets every library (FUNCTION FLUSH).
    pub(crate) fn forget_libraries(&mut self) {
        self.libraries.clear();
    }
}

/// A function a library registered, as FUNCTION LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registered {
    pub name: String,
    pub description: Option<String>,
    pub flags: Vec<String>,
}

/// A library this VM has loaded: the digest of its code and its functions.
struct LoadedLibrary {
    code: Sha,
    functions: HashMap<String, Function>,
}

/// The text of an error a library raised while loading (Redis's
/// `luaExtractErrorInformation`).
fn load_error_text(lua: &Lua, value: &Value) -> String {
    match value {
        Value::Table(table) => match table.raw_get::<Value>("err") {
            Ok(Value::String(text)) => text.to_string_lossy(),
            _ => "ERR execution failure".into(),
        },
        Value::String(text) => format!("ERR {}", text.to_string_lossy()),
        Value::UserData(_) | Value::Error(_) => match mlua::Error::from_lua(value.clone(), lua) {
            Ok(error) => format!("ERR {}", innermost(&error)),
            Err(_) => "ERR execution failure".into(),
        },
        _ => "ERR execution failure".into(),
    }
}

/// The arguments of a `redis.call`: strings, or numbers as `%.17g`.
fn command_words(words: Variadic<Value>) -> Result<Vec<Bytes>, CommandError> {
    if words.is_empty() {
        return Err(CommandError::Other("ERR Please specify at least one argument for this redis lib call".into()));
    }
    words
        .iter()
        .map(|word| match word {
            Value::String(text) => Ok(Bytes::copy_from_slice(&text.as_bytes())),
            Value::Integer(n) => Ok(Bytes::from(n.to_string())),
            Value::Number(n) => Ok(Bytes::from(crate::sorted::format_score(*n))),
            _ => Err(CommandError::Other("ERR Lua redis lib command arguments must be strings or integers".into())),
        })
        .collect()
}

fn strings(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

/// The reply of a script that raised `error` (the sandbox's handler made
/// it a table with `err`, `source` and `line`); `label` names the script.
fn script_error(label: &dyn std::fmt::Display, error: &Value, killed: bool, budget: u64) -> Reply {
    let Value::Table(table) = error else {
        return Reply::Error(CommandError::Other(format!("ERR Error running script {label}, execution failure")));
    };
    let field = |name: &str| match table.raw_get::<Value>(name) {
        Ok(Value::String(text)) => Some(text.to_string_lossy()),
        Ok(Value::Integer(n)) => Some(n.to_string()),
        Ok(Value::Number(n)) => Some(crate::sorted::format_score(n)),
        _ => None,
    };
    let message = match killed {
        true => format!("ERR Script killed: it ran past its budget of {budget} Lua instructions"),
        false => field("err").unwrap_or_else(|| "ERR execution failure".into()),
    };
    let text = match (field("source"), field("line")) {
        (Some(source), Some(line)) => format!("{message} script: {label}, on {source}:{line}."),
        _ => message,
    };
    Reply::Error(CommandError::Other(text))
}

/// The text of a compile error as Lua words it (`user_script:1: …`).
fn syntax_message(error: &mlua::Error) -> String {
    match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The Rust functions the sandbox builds on.
fn natives(lua: &Lua, random: Arc<Rand48>) -> mlua::Result<Table> {
    let natives = lua.create_table()?;
    // SAFETY: `raising` keeps to the Lua C API's rules.
    let raising_functions = unsafe {
        [
            lua.create_c_function(raising::<1>)?,
            lua.create_c_function(raising::<2>)?,
            lua.create_c_function(raising::<3>)?,
            lua.create_c_function(raising::<4>)?,
            lua.create_c_function(raising::<5>)?,
            lua.create_c_function(raising::<6>)?,
        ]
    };
    natives.set("raising", lua.create_sequence_from(raising_functions)?)?;
    natives.set(
        "sha1hex",
        lua.create_function(|_, text: mlua::LuaString| {
            Ok(sha1_smol::Sha1::from(&*text.as_bytes()).digest().to_string())
        })?,
    )?;
    natives.set(
        "error_text",
        lua.create_function(|_, text: mlua::LuaString| Ok(lua_error_text(&text.to_string_lossy())))?,
    )?;
    natives.set(
        "log",
        lua.create_function(|_, (level, text): (u8, mlua::LuaString)| {
            let text = text.to_string_lossy();
            match level {
                0 => tracing::debug!(target: "script", "{text}"),
                1 | 2 => tracing::info!(target: "script", "{text}"),
                _ => tracing::warn!(target: "script", "{text}"),
            }
            Ok(())
        })?,
    )?;
    let draw = random.clone();
    natives.set("rand48", lua.create_function(move |_, ()| Ok(draw.next()))?)?;
    natives.set(
        "srand48",
        lua.create_function(move |_, seed: f64| {
            random.reseed(seed as i64 as i32);
            Ok(())
        })?,
    )?;
    natives.set("version", VERSION)?;
    natives.set("version_num", version_num(VERSION))?;
    natives.set("bit", bit::library(lua)?)?;
    natives.set("cjson", cjson::library(lua)?)?;
    natives.set("cmsgpack", cmsgpack::library(lua)?)?;
    natives.set("struct", lua_struct::library(lua)?)?;
    natives.set("error_message", lua.create_function(|_, error: mlua::Error| Ok(innermost(&error)))?)?;
    Ok(natives)
}

/// The message of an error a Rust function of ours raised, without
/// mlua's wrapping (its traceback, "runtime error: "), as Lua's C
/// libraries word theirs.
pub(super) fn innermost(error: &mlua::Error) -> String {
    match error {
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::BadArgument { pos, cause, .. } => match &**cause {
            mlua::Error::FromLuaConversionError { from, to, .. } => {
                format!("bad argument #{pos} ({} expected, got {from})", lua_type_name(to))
            }
            other => format!("bad argument #{pos} ({})", innermost(other)),
        },
        other => other.to_string(),
    }
}

/// Lua's name for the type a Rust argument converts from.
fn lua_type_name(rust: &str) -> &str {
    match rust {
        "f64" | "f32" | "i64" | "i32" | "u8" | "usize" | "integer" | "number" => "number",
        other if other.contains("String") => "string",
        other => other,
    }
}

/// `7.2.0` as Redis's `0x00070200`.
fn version_num(version: &str) -> i64 {
    version.split('.').take(3).fold(0, |num, part| num * 256 + part.parse::<i64>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every command with its words, and `fail` with an error.
    struct Echo;

    impl Host for Echo {
        fn call(&mut self, words: Vec<Bytes>) -> Reply {
            match &words[0][..] {
                b"fail" => Reply::Error(CommandError::WrongType),
                b"status" => Reply::ok(),
                _ => Reply::Array(words.into_iter().map(Reply::Bulk).collect()),
            }
        }
    }

    fn run(engine: &mut Engine, body: &str) -> Reply {
        run_with_budget(engine, body, 1_000_000)
    }

    fn run_with_budget(engine: &mut Engine, body: &str, budget: u64) -> Reply {
        let sha = Sha::of(body.as_bytes());
        let function = match engine.compile(&sha, body.as_bytes()) {
            Ok(function) => function,
            Err(error) => return Reply::Error(error),
        };
        let (keys, args) = ([Bytes::from("k")], [Bytes::from("a")]);
        engine.run(&sha, &function, Inputs { keys: &keys, args: &args, seed: 7, budget }, &mut Echo)
    }

    fn error_of(reply: Reply) -> String {
        match reply {
            Reply::Error(error) => error.to_string(),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn scripts_convert_values_both_ways() {
        let mut engine = Engine::new();
        assert_eq!(
            run(&mut engine, "return redis.call('echo', KEYS[1], ARGV[1], 3)"),
            Reply::Array(vec![Reply::bulk("echo"), Reply::bulk("k"), Reply::bulk("a"), Reply::bulk("3")])
        );
        assert_eq!(
            run(&mut engine, "return {1, 'x', false, 3.9}"),
            Reply::Array(vec![Reply::Int(1), Reply::bulk("x"), Reply::Nil, Reply::Int(3)])
        );
        assert_eq!(run(&mut engine, "return redis.call('status')"), Reply::ok());
        assert_eq!(
            run(&mut engine, "return redis.pcall('fail')['err']"),
            Reply::bulk(CommandError::WrongType.to_string())
        );
        assert_eq!(
            run(&mut engine, "return redis.sha1hex('')"),
            Reply::bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        assert_eq!(run(&mut engine, "return cjson.encode({a = bit.band(6, 3)})"), Reply::bulk(r#"{"a":2}"#));
    }

    #[test]
    fn errors_name_the_script_and_line_as_redis_does() {
        let mut engine = Engine::new();
        let sha = Sha::of(b"\nerror('boom')");
        assert_eq!(
            error_of(run(&mut engine, "\nerror('boom')")),
            format!("ERR user_script:2: boom script: {sha}, on @user_script:2.")
        );
        let sha = Sha::of(b"return redis.call('fail')");
        assert_eq!(
            error_of(run(&mut engine, "return redis.call('fail')")),
            format!("{} script: {sha}, on @user_script:1.", CommandError::WrongType)
        );
        assert_eq!(error_of(run(&mut engine, "return redis.error_reply('MY custom')")), "MY custom");
        assert!(error_of(run(&mut engine, "x = = 1"))
            .starts_with("ERR Error compiling script (new function): user_script:1:"));
    }

    #[test]
    fn the_sandbox_keeps_scripts_from_leaving_anything_behind() {
        let mut engine = Engine::new();
        for (body, error) in [
            ("a = 1", "Attempt to modify a readonly table"),
            ("return a", "Script attempted to access nonexistent global variable 'a'"),
            ("string.x = 1", "Attempt to modify a readonly table"),
            ("rawset(_G, 'x', 1)", "Attempt to modify a readonly table"),
            ("table.insert(math, 1)", "Attempt to modify a readonly table"),
            ("return loadstring('return 1')", "nonexistent global variable 'loadstring'"),
            ("return os.time()", "nonexistent global variable 'os'"),
            ("return debug.getinfo(1)", "nonexistent global variable 'debug'"),
            ("getfenv(tostring).x = 1", "Attempt to modify a readonly table"),
            ("getmetatable('').__index = {}", "attempt to index a boolean value"),
        ] {
            let text = error_of(run(&mut engine, body));
            assert!(text.contains(error), "{body}: {text}");
        }
        assert_eq!(run(&mut engine, "return ('abc'):upper()"), Reply::bulk("ABC"));
    }

    #[test]
    fn random_numbers_follow_the_seed_and_budgets_abort_alike() {
        let mut engine = Engine::new();
        let draw = "return {math.random(1000), math.random(1000)}";
        assert_eq!(run(&mut engine, draw), run(&mut Engine::new(), draw));
        for body in [
            "while true do end",
            "while true do pcall(function() while true do end end) end",
            "local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end",
        ] {
            let text = error_of(run_with_budget(&mut engine, body, 100_000));
            assert!(text.starts_with("ERR Script killed: it ran past its budget of 100000"), "{body}: {text}");
        }
        // The VM still runs scripts afterwards.
        assert_eq!(run(&mut engine, "return 1"), Reply::Int(1));
    }
}
