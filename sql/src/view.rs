//! Views: named queries, stored as SQL text in the catalog and planned
//! wherever a FROM clause names them, as a subquery is
//! ([`crate::from`]).
//!
//! A view records the relations its query names, so that dropping (or
//! renaming, or dropping a column of) one of them while a view depends on
//! it is refused, as PostgreSQL refuses it, instead of leaving a view
//! that no longer plans. Views are read-only here: writing through one
//! answers 0A000.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};
use sqlparser::ast;
use storage::{Family, Overlay, Reader};

use crate::bind::{ident, object_name};
use crate::catalog;
use crate::command::Outcome;
use crate::error::{code, Error, Result, SqlError};
use crate::keys;
use crate::parse;
use crate::query::{self, Ctes};
use crate::subquery::Mode;
use crate::write::Effects;

/// A view as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub name: String,
    /// Names given to the query's first columns (`CREATE VIEW v (a, b)`).
    pub columns: Vec<String>,
    /// The query, as SQL text.
    pub query: String,
    /// The tables and views the query names.
    pub depends_on: Vec<String>,
}

impl View {
    /// The view's query, parsed.
    pub fn parsed(&self) -> Result<ast::Query> {
        match parse::statements(&self.query)?.pop() {
            Some(ast::Statement::Query(query)) => Ok(*query),
            _ => Err(Error::Corrupt(format!("the query of view '{}'", self.name))),
        }
    }
}

/// The view named `name`, as `reader` has the catalog.
pub fn find(reader: &impl Reader, name: &str) -> Result<Option<View>> {
    let Some(bytes) = reader.get(Family::SqlCatalog, &keys::view(name))? else { return Ok(None) };
    Ok(Some(postcard::from_bytes(&bytes).map_err(|e| Error::Corrupt(format!("view '{name}': {e}")))?))
}

/// Every view, in name order.
pub(crate) fn all(reader: &impl Reader) -> Result<Vec<View>> {
    let (start, end) = keys::views();
    let mut views = Vec::new();
    for entry in reader.scan(Family::SqlCatalog, &start, Some(&end)) {
        let (key, bytes) = entry?;
        views.push(
            postcard::from_bytes(&bytes)
                .map_err(|e| Error::Corrupt(format!("view {}: {e}", String::from_utf8_lossy(&key))))?,
        );
    }
    Ok(views)
}

/// Whether a view other than those in `except` depends on relation
/// `name`.
pub fn depended_on(reader: &impl Reader, name: &str, except: &[String]) -> Result<bool> {
    Ok(all(reader)?.iter().any(|view| view.depends_on.iter().any(|d| d == name) && !except.contains(&view.name)))
}

/// 2BP01 if a view other than those in `except` depends on relation
/// `name`; `doing` is what PostgreSQL says it cannot do ("drop table t").
pub fn refuse_if_depended_on(reader: &impl Reader, name: &str, doing: &str, except: &[String]) -> Result<()> {
    if depended_on(reader, name, except)? {
        return Err(SqlError::new(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot {doing} because other objects depend on it"),
        )
        .into());
    }
    Ok(())
}

/// The relations `query` names that exist in the catalog (a WITH
/// query's name is not one, unless it shadows one: then the view depends
/// on it anyway, which only ever refuses more).
fn relations(reader: &impl Reader, query: &ast::Query) -> Result<Vec<String>> {
    let mut names = BTreeSet::new();
    let _ = ast::visit_relations(query, |name| {
        if let Ok(name) = object_name(name) {
            names.insert(name);
        }
        ControlFlow::<()>::Continue(())
    });
    let mut existing = Vec::new();
    for name in names {
        if catalog::table(reader, &name)?.is_some() || find(reader, &name)?.is_some() {
            existing.push(name);
        }
    }
    Ok(existing)
}

/// Whether view `name` would read itself through `depends_on`.
fn recursive(reader: &impl Reader, name: &str, depends_on: &[String]) -> Result<bool> {
    let mut pending: Vec<String> = depends_on.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(next) = pending.pop() {
        if next == name {
            return Ok(true);
        }
        if seen.insert(next.clone()) {
            if let Some(view) = find(reader, &next)? {
                pending.extend(view.depends_on);
            }
        }
    }
    Ok(false)
}

pub fn create<R: Reader>(view: &mut Overlay<'_, R>, create: &ast::CreateView) -> Result<Outcome> {
    let name = object_name(&create.name)?;
    if create.materialized
        || create.temporary
        || create.or_alter
        || !matches!(create.options, ast::CreateTableOptions::None)
    {
        return Err(SqlError::unsupported(format!("this form of CREATE VIEW ({name})")).into());
    }
    let existing = find(view, &name)?;
    if existing.is_some() && create.if_not_exists {
        return Ok(Outcome::command("CREATE VIEW"));
    }
    if !(existing.is_some() && create.or_replace) {
        catalog::refuse_taken(view, &name)?;
    }
    // Bound (not run) now, so that a view that cannot plan is refused.
    let plan = query::plan_with(&*view, &create.query, &Ctes::default(), Mode::Describe)?;
    let columns: Vec<String> = create.columns.iter().map(|c| ident(&c.name)).collect();
    if columns.len() > plan.columns().len() {
        return Err(SqlError::new(code::SYNTAX_ERROR, "CREATE VIEW specifies more column names than columns").into());
    }
    let mut names: Vec<String> = plan.columns().iter().map(|c| c.name.clone()).collect();
    names[..columns.len()].clone_from_slice(&columns);
    if let Some(duplicate) = names.iter().enumerate().find_map(|(i, n)| names[..i].contains(n).then_some(n)) {
        return Err(
            SqlError::new(code::DUPLICATE_COLUMN, format!("column \"{duplicate}\" specified more than once")).into()
        );
    }
    let depends_on = relations(&*view, &create.query)?;
    if recursive(&*view, &name, &depends_on)? {
        return Err(SqlError::new(
            code::INVALID_OBJECT_DEFINITION,
            format!("infinite recursion detected in rules for relation \"{name}\""),
        )
        .into());
    }
    let stored = View { name: name.clone(), columns, query: create.query.to_string(), depends_on };
    view.put(Family::SqlCatalog, keys::view(&name), postcard::to_stdvec(&stored).expect("views serialize"));
    Ok(Outcome::command("CREATE VIEW"))
}

pub fn drop<R: Reader>(view: &mut Overlay<'_, R>, names: &[ast::ObjectName], if_exists: bool) -> Result<Effects> {
    let names: Vec<String> = names.iter().map(object_name).collect::<std::result::Result<_, _>>()?;
    for name in &names {
        if find(view, name)?.is_none() {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(code::UNDEFINED_TABLE, format!("view \"{name}\" does not exist")).into());
        }
        // Views dropped together may depend on each other.
        refuse_if_depended_on(view, name, &format!("drop view {name}"), &names)?;
    }
    for name in &names {
        view.delete(Family::SqlCatalog, keys::view(name));
    }
    Ok(Effects { outcome: Outcome::command("DROP VIEW"), dropped: Vec::new() })
}
