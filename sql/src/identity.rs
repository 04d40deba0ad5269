//! Who the session is: the user and database its connection named at
//! startup, as `current_user`, `session_user`, `user`, `current_role`,
//! `current_database()`, `current_catalog` and `current_schema()` answer
//! them.
//!
//! The session replaces those calls by their values before a statement
//! runs, so that a write logged to `sql/0` carries the values, not the
//! calls: apply, on any replica, has no session to ask.

use std::ops::ControlFlow;

use sqlparser::ast;

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
    /// `statement` with every identity function replaced by its value.
    pub fn substitute(&self, statement: &mut ast::Statement) {
        let _ = ast::visit_expressions_mut(statement, |expr| {
            if let ast::Expr::Function(function) = expr {
                let no_args = no_arguments(&function.args);
                let value = match object_name(&function.name).as_deref() {
                    Ok("current_user" | "session_user" | "user" | "current_role") if no_args => {
                        Some(self.user.as_str())
                    }
                    Ok("current_database" | "current_catalog") if no_args => Some(self.database.as_str()),
                    Ok("current_schema") if no_args => Some(PUBLIC),
                    _ => None,
                };
                if let Some(value) = value {
                    // A `name` in PostgreSQL; text here.
                    *expr = ast::Expr::Value(ast::Value::SingleQuotedString(value.to_string()).into());
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
}

/// The one schema.
const PUBLIC: &str = "public";
