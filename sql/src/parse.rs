//! Parsing with sqlparser's PostgreSQL dialect. The recursion limit is
//! raised from sqlparser's 50 so that deeply parenthesised expressions
//! (100 levels) parse; a statement sqlparser cannot parse is 42601 with
//! the parser's message.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use crate::error::{code, SqlError};

const RECURSION_LIMIT: usize = 200;

fn syntax(error: sqlparser::parser::ParserError) -> SqlError {
    let message = match error {
        sqlparser::parser::ParserError::ParserError(m) | sqlparser::parser::ParserError::TokenizerError(m) => m,
        sqlparser::parser::ParserError::RecursionLimitExceeded => "statement is nested too deeply".into(),
    };
    SqlError::new(code::SYNTAX_ERROR, message)
}

/// The statements of `sql` (a simple-query string may hold several).
pub fn statements(sql: &str) -> Result<Vec<ast::Statement>, SqlError> {
    let dialect = PostgreSqlDialect {};
    Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(syntax)
}

/// One expression (a stored DEFAULT).
pub fn expression(sql: &str) -> Result<ast::Expr, SqlError> {
    let dialect = PostgreSqlDialect {};
    Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .map_err(syntax)
}
