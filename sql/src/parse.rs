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

fn parse<T>(
    sql: &str,
    parse: impl FnOnce(&mut Parser) -> Result<T, sqlparser::parser::ParserError>,
) -> Result<T, SqlError> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).with_recursion_limit(RECURSION_LIMIT).try_with_sql(sql).map_err(syntax)?;
    parse(&mut parser).map_err(syntax)
}

/// The statements of `sql` (a simple-query string may hold several).
pub fn statements(sql: &str) -> Result<Vec<ast::Statement>, SqlError> {
    parse(sql, |parser| parser.parse_statements())
}

/// One expression (a stored DEFAULT).
pub fn expression(sql: &str) -> Result<ast::Expr, SqlError> {
    parse(sql, |parser| parser.parse_expr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_parentheses_parse_and_bad_syntax_is_42601() {
        let deep = format!("SELECT {}1{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(statements(&deep).unwrap().len(), 1);
        assert_eq!(statements("SELEC 1").unwrap_err().code, code::SYNTAX_ERROR);
    }
}
