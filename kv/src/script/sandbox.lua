-- The sandbox every script runs in, built once per Lua VM (engine.rs).
--
-- Redis 7.0's rules, without its patched Lua: the globals and every
-- library table are read-only (an empty proxy whose metatable reads
-- through to the hidden table, refuses writes and hides itself), reading
-- a global that does not exist is an error, and what could reach the
-- unprotected tables (debug, getfenv of a library function, rawset on a
-- proxy, load/loadstring, which would compile against the real globals)
-- is removed or guarded. So a script leaves nothing behind in the VM:
-- every replica's VM, however long it has run, behaves alike.
--
-- Called with the Rust natives; returns the control table `engine.rs`
-- drives: `run`, `state` (the running script's command and RESP version)
-- and `set_args`.

local natives = ...
local getinfo = debug.getinfo
local error, type, tostring, tonumber, select = error, type, tostring, tonumber, select
local rawget, rawset, setmetatable, getmetatable = rawget, rawset, setmetatable, getmetatable
local getfenv, setfenv, pcall, xpcall, pairs, floor = getfenv, setfenv, pcall, xpcall, pairs, math.floor
local insert, remove, sort, concat = table.insert, table.remove, table.sort, table.concat
local collectgarbage = collectgarbage

-- The running script: `command` runs one redis.call (a Rust function
-- scoped to the run), `resp` is redis.setresp's choice.
local state = { command = nil, resp = 2 }
-- Every proxy and every function of ours, so that the guarded builtins
-- refuse to touch them.
local protected = setmetatable({}, { __mode = 'k' })

local function readonly_error()
  error('Attempt to modify a readonly table', 2)
end

local function readonly(target)
  local proxy = {}
  setmetatable(proxy, { __index = target, __newindex = readonly_error, __metatable = false })
  protected[proxy] = true
  for _, value in pairs(target) do
    if type(value) == 'function' then
      protected[value] = true
    end
  end
  return proxy
end

-- The error table redis.call raises and redis.pcall returns.
local function error_table(text)
  return { err = natives.error_text(text) }
end

-- The functions below that "raise" return the error table: the C
-- function that Lua calls for them (`natives.raising`, engine.rs) raises
-- it from a C frame, which keeps the script's line in the error.
local raise = error_table

-- redis.* ------------------------------------------------------------------

local redis = {}

-- Runs one command; an error is a table, which redis.call (natives.call,
-- a C function) raises and redis.pcall returns.
local function dispatch(...)
  local command = state.command
  if command == nil then
    return error_table('redis.call/pcall can only be called inside a script invocation')
  end
  return command(state.resp, ...)
end

redis.pcall = dispatch

local function sha1hex(...)
  if select('#', ...) ~= 1 then
    return raise('wrong number of arguments')
  end
  local text = ...
  if type(text) == 'number' then
    text = tostring(text)
  elseif type(text) ~= 'string' then
    text = ''
  end
  return natives.sha1hex(text)
end

function redis.error_reply(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  if text:sub(1, 1) ~= '-' then
    text = '-' .. text
  end
  return error_table(text)
end

function redis.status_reply(...)
  local text = ...
  if select('#', ...) ~= 1 or type(text) ~= 'string' then
    return error_table('wrong number or type of arguments')
  end
  return { ok = text }
end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3

local function log(...)
  local count = select('#', ...)
  if count < 2 then
    return raise('redis.log() requires two arguments or more.')
  end
  local level = ...
  if tonumber(level) == nil then
    return raise('First argument must be a number (log level).')
  end
  level = tonumber(level)
  if level < 0 or level > 3 then
    return raise('Invalid debug level.')
  end
  local parts = {}
  for i = 2, count do
    local part = select(i, ...)
    if type(part) == 'string' or type(part) == 'number' then
      insert(parts, tostring(part))
    end
  end
  natives.log(level, concat(parts, ' '))
end

local function setresp(...)
  if state.command == nil then
    return raise('redis.setresp can only be called inside a script invocation')
  end
  if select('#', ...) ~= 1 then
    return raise('redis.setresp() requires one argument.')
  end
  local resp = tonumber((...))
  if resp ~= 2 and resp ~= 3 then
    return raise('RESP version must be 2 or 3.')
  end
  state.resp = resp
end

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- Accepted for compatibility: every write of a script is in its log
-- entry, which every replica applies.
local function set_repl(...)
  if state.command == nil then
    return raise('redis.set_repl can only be called inside a script invocation')
  end
  if select('#', ...) ~= 1 then
    return raise('redis.set_repl() requires two arguments.')
  end
  local flags = tonumber((...)) or 0
  if flags < 0 or flags > 3 or flags ~= floor(flags) then
    return raise('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
end

-- natives.raising[i] runs raising[i].
local raising = { dispatch, setresp, set_repl, log, sha1hex }
-- (raising[6], register_function, is added below.)
redis.call, redis.setresp, redis.set_repl, redis.log, redis.sha1hex = unpack(natives.raising)

function redis.replicate_commands()
  return true
end

function redis.breakpoint()
  return false
end

function redis.debug()
end

redis.REDIS_VERSION = natives.version
redis.REDIS_VERSION_NUM = natives.version_num

-- math.random: Redis's rand48 generator, seeded by the log entry at the
-- start of every script, so every replica draws the same numbers.

local function check_int(position, value)
  local number = tonumber(value)
  if number == nil then
    local got = value == nil and 'no value' or type(value)
    error("bad argument #" .. position .. " to 'random' (number expected, got " .. got .. ")", 3)
  end
  return number - number % 1
end

local math_lib = {}
for name, value in pairs(math) do
  math_lib[name] = value
end

function math_lib.random(...)
  local r = (natives.rand48() % 2147483647) / 2147483647
  local count = select('#', ...)
  if count == 0 then
    return r
  elseif count == 1 then
    local upper = check_int(1, (...))
    if upper < 1 then
      error("bad argument #1 to 'random' (interval is empty)", 2)
    end
    return floor(r * upper) + 1
  elseif count == 2 then
    local lower, upper = ...
    lower, upper = check_int(1, lower), check_int(2, upper)
    if lower > upper then
      error("bad argument #2 to 'random' (interval is empty)", 2)
    end
    return floor(r * (upper - lower + 1)) + lower
  end
  error('wrong number of arguments', 2)
end

function math_lib.randomseed(seed)
  natives.srand48(check_int(1, seed))
end

-- The globals ----------------------------------------------------------------

local base = {}
for _, name in ipairs({
  'tostring', 'setmetatable', 'next', 'assert', 'tonumber', 'rawequal', 'getmetatable',
  'type', 'select', 'unpack', 'pairs', 'rawget', 'ipairs', 'error', 'newproxy',
}) do
  base[name] = _G[name]
end

-- Once a script is past its budget (`engine.rs` sets `killed`), nothing
-- catches the error any more.
local function unless_killed(...)
  if state.killed then
    error('script killed', 0)
  end
  return ...
end

-- As Redis's pcall: an error table caught is given as its text.
local function caught(ok, ...)
  if state.killed then
    error('script killed', 0)
  end
  if not ok then
    local err = ...
    if type(err) == 'table' and type(rawget(err, 'err')) == 'string' then
      return false, rawget(err, 'err')
    end
  end
  return ok, ...
end

function base.pcall(...)
  return caught(pcall(...))
end

function base.xpcall(...)
  return unless_killed(xpcall(...))
end

local coroutine_lib = {}
for name, value in pairs(coroutine) do
  coroutine_lib[name] = value
end

function coroutine_lib.resume(...)
  return unless_killed(coroutine.resume(...))
end
base._VERSION = _VERSION

-- Memory gauges differ between replicas (their VMs have different
-- histories), so a script that stored one would make them diverge.
function base.collectgarbage(option, ...)
  if option == 'count' then
    return 0
  end
  return collectgarbage(option, ...)
end

function base.gcinfo()
  return 0
end

function base.rawset(target, key, value)
  if protected[target] then
    readonly_error()
  end
  return rawset(target, key, value)
end

-- A level's environment is the script's own; a function's is hidden when
-- it is one of ours (its environment is where the libraries were built).
function base.getfenv(target)
  if target == nil then
    target = 1
  end
  if type(target) == 'number' then
    if target == 0 then
      return getfenv(0)
    end
    return getfenv(target + 1)
  end
  if protected[target] or getinfo(target, 'S').what == 'C' then
    return getfenv(0)
  end
  return getfenv(target)
end

function base.setfenv(target, env)
  if type(target) == 'number' then
    if target == 0 then
      error("'setfenv' cannot change the environment of the script's thread", 2)
    end
    return setfenv(target + 1, env)
  end
  if protected[target] or getinfo(target, 'S').what == 'C' then
    error("'setfenv' cannot change the environment of this function", 2)
  end
  return setfenv(target, env)
end

local table_lib = {}
for name, value in pairs(table) do
  table_lib[name] = value
end

-- The functions that write a table raw refuse a protected one.
for name, raw in pairs({ insert = insert, remove = remove, sort = sort }) do
  table_lib[name] = function(target, ...)
    if protected[target] then
      readonly_error()
    end
    return raw(target, ...)
  end
end

local string_proxy = readonly(string)
base.string = string_proxy
base.math = readonly(math_lib)
base.table = readonly(table_lib)
base.coroutine = readonly(coroutine_lib)
base.redis = readonly(redis)
base.bit = readonly(natives.bit)
base.cjson = readonly(natives.cjson)
base.cmsgpack = readonly(natives.cmsgpack)
base.struct = readonly(natives.struct)
for _, value in pairs(base) do
  if type(value) == 'function' then
    protected[value] = true
  end
end

-- Strings' methods read through the same proxy ('x'):upper() uses.
local string_meta = getmetatable('')
string_meta.__index = string_proxy
string_meta.__metatable = false

-- The names a script may read although they are nil.
local nil_allowed = { KEYS = true, ARGV = true }

local globals = {}
base._G = globals
setmetatable(globals, {
  __index = function(_, name)
    local value = base[name]
    if value == nil and not nil_allowed[name] then
      error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end
    return value
  end,
  __newindex = readonly_error,
  __metatable = false,
})
protected[globals] = true

local handler_ref = {}

-- Functions (FUNCTION LOAD, FCALL) ---------------------------------------------
--
-- A library's code runs once per VM to register its functions, with
-- nothing but the load API in its globals: `redis.register_function`,
-- `redis.log` and the version. Its functions later run with the same
-- globals as scripts, without KEYS and ARGV.

local flag_names = {
  ['no-writes'] = true, ['allow-oom'] = true, ['allow-stale'] = true, ['no-cluster'] = true,
  ['allow-cross-slot-keys'] = true,
}

local function register(name, callback, description, flags)
  local registered = state.registered
  if registered == nil then
    return raise('redis.register_function can only be called on FUNCTION LOAD command')
  end
  if type(name) ~= 'string' or not name:match('^[%w_]+$') then
    return raise('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
  end
  if registered.by_name[name] then
    return raise('Function already exists in the library')
  end
  registered.by_name[name] = callback
  insert(registered, { name = name, callback = callback, description = description, flags = flags })
end

local function register_function(...)
  local count = select('#', ...)
  if count == 1 then
    local args = ...
    if type(args) ~= 'table' then
      return raise('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
    end
    local name, callback, description, flags = nil, nil, nil, {}
    for key, value in pairs(args) do
      if type(key) ~= 'string' then
        return raise('named argument key given to redis.register_function is not a string')
      elseif key == 'function_name' then
        if type(value) ~= 'string' then
          return raise('function_name argument given to redis.register_function must be a string')
        end
        name = value
      elseif key == 'description' then
        if type(value) ~= 'string' then
          return raise('description argument given to redis.register_function must be a string')
        end
        description = value
      elseif key == 'callback' then
        if type(value) ~= 'function' then
          return raise('callback argument given to redis.register_function must be a function')
        end
        callback = value
      elseif key == 'flags' then
        if type(value) ~= 'table' then
          return raise('flags argument to redis.register_function must be a table representing function flags')
        end
        for _, flag in ipairs(value) do
          if type(flag) ~= 'string' or not flag_names[flag] then
            return raise('unknown flag given')
          end
          insert(flags, flag)
        end
      else
        return raise('unknown argument given to redis.register_function')
      end
    end
    if name == nil then
      return raise('redis.register_function must get a function name argument')
    end
    if callback == nil then
      return raise('redis.register_function must get a callback argument')
    end
    return register(name, callback, description, flags)
  elseif count == 2 then
    local name, callback = ...
    if type(name) ~= 'string' then
      return raise('first argument to redis.register_function must be a string')
    end
    if type(callback) ~= 'function' then
      return raise('second argument to redis.register_function must be a function')
    end
    return register(name, callback, nil, {})
  end
  return raise('wrong number of arguments to redis.register_function')
end

-- What a library's code sees while it loads.
local load_redis = {
  register_function = natives.raising[6],
  log = natives.raising[4],
  LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = natives.version, REDIS_VERSION_NUM = natives.version_num,
}
local load_redis_proxy = {}
setmetatable(load_redis_proxy, {
  __index = function(_, name)
    local value = load_redis[name]
    if value == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end
    return value
  end,
  __newindex = readonly_error,
  __metatable = false,
})
protected[load_redis_proxy] = true

-- Functions' globals: the load API while a library loads, else the
-- scripts' globals without KEYS and ARGV.
local function_globals = {}
setmetatable(function_globals, {
  __index = function(_, name)
    local value
    if state.registered ~= nil then
      value = name == 'redis' and load_redis_proxy or nil
    elseif name ~= 'KEYS' and name ~= 'ARGV' then
      value = base[name]
    end
    if value == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
    end
    return value
  end,
  __newindex = readonly_error,
  __metatable = false,
})
protected[function_globals] = true

-- Runs a library's compiled code; returns true and the registered
-- functions, or false and the error.
local function load_library(code)
  state.registered = { by_name = {} }
  local ok, err = pcall(code)
  local registered = state.registered
  state.registered = nil
  registered.by_name = nil
  if not ok then
    return false, err
  end
  return true, registered
end

-- Runs a registered function with its keys and arguments.
local function run_function(callback, keys, argv)
  state.resp = 2
  return xpcall(function()
    return callback(keys, argv)
  end, handler_ref.handler)
end

-- Runs compiled script `script` with its KEYS and ARGV; returns xpcall's
-- results. The handler turns any error into Redis's error table with the
-- script's source and line (skipping our own frames, as Redis skips C's).
function handler_ref.handler(err)
  local level = 2
  local info = getinfo(level, 'nSl')
  while info and (info.what == 'C' or info.what == 'tail' or info.source == '=sandbox') do
    level = level + 1
    info = getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then
    -- Raised by one of our Rust functions: worded as a C library would.
    local text = natives.error_message(err)
    if info then
      text = info.short_src .. ':' .. info.currentline .. ': ' .. text
    end
    err = { err = 'ERR ' .. text }
  elseif type(err) ~= 'table' then
    err = { err = 'ERR ' .. tostring(err) }
  end
  if info then
    err.source = info.source
    err.line = info.currentline
  end
  return err
end

local function run(script, keys, argv)
  base.KEYS, base.ARGV = keys, argv
  state.resp = 2
  return xpcall(script, handler_ref.handler)
end

-- Nothing unsafe stays reachable, even through a C function's environment.
for _, name in ipairs({ 'dofile', 'loadfile', 'load', 'loadstring', 'print', 'require', 'module', 'package',
                        'debug', 'os', 'io' }) do
  _G[name] = nil
end

raising[6] = register_function

return {
  run = run,
  state = state,
  globals = globals,
  raising = raising,
  function_globals = function_globals,
  load_library = load_library,
  run_function = run_function,
}
