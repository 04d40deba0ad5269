//! Who the session is: the user and database its connection named at
//! startup, as `current_user`, `session_user`, `user`, `current_role`,
//! `current_database()`, `current_catalog` and `current_schema()` answer
//! them.
//!
//! The session replaces those calls by their values before a statement
//! runs, so that a write logged to `sql/0` carries the values, not the
//! calls: apply, on any replica, has no session to ask.

use std::ops::ControlFlow;

use sqlparser::ast::{self, VisitMut, VisitorMut};

use crate::bind::{no_arguments, object_name};

/// The connection's user and database.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub database: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity { user: "seshat".into(), database: "seshat".into() }
    }
}

impl Identity {
    /// `statement` with every identity function replaced by its value,
    /// and the system relations that list the user or the database
    /// ([`crate::system::IDENTIFIED`]) given both as arguments.
    pub fn substitute(&self, statement: &mut ast::Statement) {
        let _ = statement.visit(&mut Substitute(self));
    }

    fn value_of(&self, function: &ast::Function) -> Option<&str> {
        let no_args = no_arguments(&function.args);
        match object_name(&function.name).as_deref() {
            Ok("current_user" | "session_user" | "user" | "current_role") if no_args => Some(self.user.as_str()),
            Ok("current_database" | "current_catalog") if no_args => Some(self.database.as_str()),
            Ok("current_schema") if no_args => Some(PUBLIC),
            // Every relation is the connection's user's.
            Ok("pg_get_userbyid") => Some(self.user.as_str()),
            _ => None,
        }
    }
}

struct Substitute<'a>(&'a Identity);

fn string(value: &str) -> ast::Expr {
    ast::Expr::Value(ast::Value::SingleQuotedString(value.to_string()).into())
}

impl VisitorMut for Substitute<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
        if let ast::Expr::Function(function) = expr {
            if let Some(value) = self.0.value_of(function) {
                // A `name` in PostgreSQL; text here.
                *expr = string(value);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
        if let ast::TableFactor::Table { name, args: args @ None, .. } = factor {
            if crate::system::names(name).is_some_and(|(_, table)| crate::system::IDENTIFIED.contains(&table.as_str()))
            {
                let arg = |value: &str| ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(string(value)));
                let list = vec![arg(&self.0.user), arg(&self.0.database)];
                *args = Some(ast::TableFunctionArgs { args: list, settings: None });
            }
        }
        ControlFlow::Continue(())
    }
}

/// The one schema.
const PUBLIC: &str = "public";
