//! Parsing with sqlparser's PostgreSQL dialect. The recursion limit is
//! raised from sqlparser's 50 so that deeply parenthesised expressions
//! (100 levels) parse; a statement sqlparser cannot parse is 42601 with
//! the parser's message.
//!
//! Utility statements that tools send in PostgreSQL's own syntax, which
//! sqlparser reads otherwise or not at all, are rewritten token by token
//! first ([`rewrite_utilities`]): a COPY option's boolean written `on`,
//! `off`, `1` or `0` (pgbench's `WITH (FREEZE ON)`), and `VACUUM` /
//! `ANALYZE` with options and a list of tables (pgbench's `vacuum analyze
//! t`), which become one plain `VACUUM t` (or `ANALYZE t`) per table:
//! they do nothing here but check that the table exists.

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

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
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::new(code::SYNTAX_ERROR, e.to_string()))?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(rewrite_utilities(tokens));
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

/// `tokens` with the utility statements rewritten as the module says;
/// every other statement's tokens unchanged.
fn rewrite_utilities(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    // Most strings have none of them: no copy then.
    let utility =
        |t: &TokenWithSpan| matches!(keyword(&t.token), Some(Keyword::COPY | Keyword::VACUUM | Keyword::ANALYZE));
    if !tokens.iter().any(utility) {
        return tokens;
    }
    let mut out = Vec::with_capacity(tokens.len());
    for statement in tokens.split_inclusive(|t| t.token == Token::SemiColon) {
        match first_keyword(statement) {
            Some(Keyword::COPY) => out.extend(copy_booleans(statement)),
            Some(keyword @ (Keyword::VACUUM | Keyword::ANALYZE)) => out.extend(maintenance(keyword, statement)),
            _ => out.extend_from_slice(statement),
        }
    }
    out
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_))
}

fn keyword(token: &Token) -> Option<Keyword> {
    match token {
        Token::Word(word) if word.quote_style.is_none() => Some(word.keyword),
        _ => None,
    }
}

fn first_keyword(statement: &[TokenWithSpan]) -> Option<Keyword> {
    statement.iter().find(|t| !is_blank(&t.token)).and_then(|t| keyword(&t.token))
}

/// A COPY statement with `FREEZE`'s and `HEADER`'s `on`/`off`/`1`/`0`
/// spelled `TRUE`/`FALSE`, which sqlparser reads.
fn copy_booleans(statement: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let mut out = statement.to_vec();
    let mut option = false;
    for token in out.iter_mut() {
        if is_blank(&token.token) {
            continue;
        }
        if option {
            let value = match &token.token {
                Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("on") => Some(true),
                Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("off") => Some(false),
                Token::Number(n, _) if n == "1" => Some(true),
                Token::Number(n, _) if n == "0" => Some(false),
                _ => None,
            };
            if let Some(value) = value {
                token.token = Token::make_keyword(if value { "TRUE" } else { "FALSE" });
            }
        }
        option = matches!(keyword(&token.token), Some(Keyword::FREEZE | Keyword::HEADER));
    }
    out
}

/// `VACUUM`/`ANALYZE [ (options) ] [ options ] [ t [ (columns) ] [, …] ]`
/// as one `VACUUM t` (`ANALYZE t`) per table, or a bare one.
fn maintenance(command: Keyword, statement: &[TokenWithSpan]) -> Vec<TokenWithSpan> {
    let word = if command == Keyword::VACUUM { "VACUUM" } else { "ANALYZE" };
    let significant: Vec<&TokenWithSpan> = statement.iter().filter(|t| !is_blank(&t.token)).collect();
    let mut rest = &significant[1..];
    let mut tables: Vec<Vec<TokenWithSpan>> = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0usize;
    let mut ended = false;
    while let Some((token, tail)) = rest.split_first() {
        rest = tail;
        match &token.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Token::SemiColon => ended = true,
            Token::Comma => tables.extend((!current.is_empty()).then(|| std::mem::take(&mut current))),
            Token::Word(_) if current.is_empty() && is_option(&token.token) && tables.is_empty() => {}
            _ => current.push((*token).clone()),
        }
    }
    tables.extend((!current.is_empty()).then_some(current));
    let span = statement[0].span;
    let made = |token: Token| TokenWithSpan { token, span };
    let mut out = Vec::new();
    if tables.is_empty() {
        out.push(made(Token::make_keyword(word)));
    }
    for (i, name) in tables.into_iter().enumerate() {
        if i > 0 {
            out.push(made(Token::SemiColon));
        }
        out.push(made(Token::make_keyword(word)));
        out.push(made(Token::Whitespace(Whitespace::Space)));
        out.extend(name);
    }
    if ended {
        out.push(made(Token::SemiColon));
    }
    out
}

/// A VACUUM or ANALYZE option written without parentheses.
fn is_option(token: &Token) -> bool {
    matches!(keyword(token), Some(Keyword::FULL | Keyword::FREEZE | Keyword::VERBOSE | Keyword::ANALYZE))
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

    #[test]
    fn pgbench_utility_statements_parse() {
        let copy = statements("copy pgbench_accounts from stdin with (freeze on, header off)").unwrap();
        let ast::Statement::Copy { options, .. } = &copy[0] else { panic!("{copy:?}") };
        assert_eq!(options, &[ast::CopyOption::Freeze(true), ast::CopyOption::Header(false)]);
        let vacuum = statements("vacuum analyze a, b (x); VACUUM (ANALYZE, VERBOSE) c; vacuum").unwrap();
        let texts: Vec<String> = vacuum.iter().map(|s| s.to_string()).collect();
        assert_eq!(texts, ["VACUUM a", "VACUUM b", "VACUUM c", "VACUUM"]);
        let analyze = statements("analyze verbose t").unwrap();
        assert_eq!(analyze[0].to_string(), "ANALYZE t");
        // Other statements keep their semicolons and strings.
        assert_eq!(statements("select 'vacuum; on'; select 1").unwrap().len(), 2);
    }
}
