//! Redis 7 functions on the read path: FUNCTION LIST, DUMP and STATS
//! from what the group stores (`crate::script::library`), and the
//! lookup of a function for FCALL_RO.

use bytes::Bytes;
use storage::keyspace::kv_meta;
use storage::Family;

use super::ReadCtx;
use crate::error::Result;
use crate::reply::Reply;
use crate::script::library::{StoredFunction, StoredLibrary};

impl ReadCtx<'_> {
    /// The group's libraries, by name.
    fn libraries(&self) -> Result<Vec<StoredLibrary>> {
        let (start, end) = kv_meta::libraries(self.shards.0);
        let mut libraries = Vec::new();
        for entry in self.reader.scan(Family::KvMeta, &start, Some(&end)) {
            let (_, value) = entry?;
            libraries.extend(StoredLibrary::decode(&value));
        }
        Ok(libraries)
    }

    /// FUNCTION LIST: each library (whose name matches `pattern`, without
    /// regard to case) with its functions, and its code with `with_code`.
    pub fn function_list(&self, pattern: Option<&[u8]>, with_code: bool) -> Result<Reply> {
        let mut listed = Vec::new();
        for library in self.libraries()? {
            if pattern.is_some_and(|pattern| {
                !crate::glob::matches(&pattern.to_ascii_lowercase(), &library.name.to_ascii_lowercase().into_bytes())
            }) {
                continue;
            }
            let functions = library
                .functions
                .iter()
                .map(|function| {
                    let flags = function.flags.iter().map(|flag| Reply::Status(flag.clone().into())).collect();
                    Reply::Map(vec![
                        (Reply::bulk("name"), Reply::bulk(function.name.clone())),
                        (Reply::bulk("description"), Reply::bulk_or_nil(function.description.clone().map(Bytes::from))),
                        (Reply::bulk("flags"), Reply::Set(flags)),
                    ])
                })
                .collect();
            let mut fields = vec![
                (Reply::bulk("library_name"), Reply::bulk(library.name.clone())),
                (Reply::bulk("engine"), Reply::bulk("LUA")),
                (Reply::bulk("functions"), Reply::Array(functions)),
            ];
            if with_code {
                fields.push((Reply::bulk("library_code"), Reply::Bulk(library.code.clone())));
            }
            listed.push(Reply::Map(fields));
        }
        Ok(Reply::Array(listed))
    }

    /// FUNCTION DUMP: every library's code in Redis's payload format.
    pub fn function_dump(&self) -> Result<Reply> {
        let codes: Vec<Bytes> = self.libraries()?.into_iter().map(|library| library.code).collect();
        Ok(Reply::Bulk(crate::dump::encode_functions(&codes)))
    }

    /// FUNCTION STATS: no script is ever running between commands; the
    /// counts of libraries and functions.
    pub fn function_stats(&self) -> Result<Reply> {
        let libraries = self.libraries()?;
        let functions: usize = libraries.iter().map(|library| library.functions.len()).sum();
        let counts = Reply::Map(vec![
            (Reply::bulk("libraries_count"), Reply::Int(libraries.len() as i64)),
            (Reply::bulk("functions_count"), Reply::Int(functions as i64)),
        ]);
        Ok(Reply::Map(vec![
            (Reply::bulk("running_script"), Reply::Nil),
            (Reply::bulk("engines"), Reply::Map(vec![(Reply::bulk("LUA"), counts)])),
        ]))
    }

    /// The stored library and function of `name`, if any.
    pub(crate) fn find_function(&self, name: &[u8]) -> Result<Option<(StoredLibrary, StoredFunction)>> {
        let Some(owner) = self.reader.get(Family::KvMeta, &kv_meta::function(self.shards.0, name))? else {
            return Ok(None);
        };
        let Some(bytes) = self.reader.get(Family::KvMeta, &kv_meta::library(self.shards.0, &owner))? else {
            return Ok(None);
        };
        let Some(library) = StoredLibrary::decode(&bytes) else { return Ok(None) };
        let function = library.functions.iter().find(|f| f.name.as_bytes() == name).cloned();
        Ok(function.map(|function| (library, function)))
    }
}
