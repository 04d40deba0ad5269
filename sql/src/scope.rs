//! What names an expression can use: the relations of a FROM clause, in
//! order, each under its name or alias. A row over a scope is the
//! relations' rows side by side, so a column is a position in it.

use std::ops::Range;

use crate::catalog::Table;
use crate::error::{code, SqlError};
use crate::plan::JoinKind;
use crate::types::DataType;

/// One relation of a scope: a table under its name or alias.
#[derive(Debug, Clone)]
pub struct Relation {
    pub qualifier: String,
    pub columns: Vec<(String, DataType)>,
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    relations: Vec<Relation>,
    /// The columns of `JOIN … USING` (and NATURAL JOIN), which an
    /// unqualified name and `*` see once.
    merged: Vec<Merged>,
}

/// A column two joined relations share by name (`USING (name)`).
#[derive(Debug, Clone)]
pub struct Merged {
    pub name: String,
    /// Positions of the left and the right relation's column.
    pub left: usize,
    pub right: usize,
    pub kind: JoinKind,
    pub data_type: DataType,
}

/// A column as a name resolved it.
pub struct Resolved<'a> {
    pub position: usize,
    pub data_type: DataType,
    pub qualifier: &'a str,
}

impl Scope {
    /// The scope of one table.
    pub fn of(table: &Table, alias: Option<String>) -> Scope {
        let relation = Relation {
            qualifier: alias.unwrap_or_else(|| table.name.clone()),
            columns: table.columns.iter().map(|c| (c.name.clone(), c.data_type)).collect(),
        };
        Scope { relations: vec![relation], merged: Vec::new() }
    }

    /// The scope of one subquery's columns under `qualifier`.
    pub fn relation(qualifier: String, columns: impl IntoIterator<Item = (String, DataType)>) -> Scope {
        Scope { relations: vec![Relation { qualifier, columns: columns.into_iter().collect() }], merged: Vec::new() }
    }

    /// This scope with `other`'s relations after its own (a join's), or
    /// 42712 if a name is used twice.
    pub fn join(mut self, other: Scope) -> Result<Scope, SqlError> {
        let shift = self.width();
        self.merged.extend(other.merged.into_iter().map(|m| Merged {
            left: m.left + shift,
            right: m.right + shift,
            ..m
        }));
        for relation in other.relations {
            if self.relations.iter().any(|r| r.qualifier == relation.qualifier) {
                return Err(SqlError::new(
                    code::DUPLICATE_ALIAS,
                    format!("table name \"{}\" specified more than once", relation.qualifier),
                ));
            }
            self.relations.push(relation);
        }
        Ok(self)
    }

    pub fn relations(&self) -> &[Relation] {
        &self.relations
    }

    /// The USING columns, in the order `*` lists them.
    pub fn merged(&self) -> &[Merged] {
        &self.merged
    }

    /// The USING column an unqualified `name` refers to, the latest join's
    /// first.
    pub fn merged_column(&self, name: &str) -> Option<&Merged> {
        self.merged.iter().rev().find(|m| m.name == name)
    }

    /// Records that the join of this scope's columns `left` and `right`
    /// shares them as `name`.
    pub fn merge(&mut self, merged: Merged) {
        self.merged.push(merged);
    }

    /// How many columns a row over this scope has.
    pub fn width(&self) -> usize {
        self.relations.iter().map(|r| r.columns.len()).sum()
    }

    /// The positions of each relation's columns in a row.
    pub fn ranges(&self) -> Vec<Range<usize>> {
        let mut start = 0;
        self.relations
            .iter()
            .map(|r| {
                let range = start..start + r.columns.len();
                start = range.end;
                range
            })
            .collect()
    }

    /// The column `qualifier.name` or `name`, as PostgreSQL resolves it:
    /// 42P01 for an unknown qualifier, 42703 for no such column, 42702
    /// for a name two relations have.
    pub fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<Resolved<'_>, SqlError> {
        let mut found: Option<Resolved<'_>> = None;
        let mut start = 0;
        let mut qualifier_seen = false;
        for relation in &self.relations {
            if qualifier.is_none_or(|q| q == relation.qualifier) {
                qualifier_seen = true;
                if let Some(i) = relation.columns.iter().position(|(column, _)| column == name) {
                    if found.is_some() {
                        return Err(SqlError::new(
                            code::AMBIGUOUS_COLUMN,
                            format!("column reference \"{name}\" is ambiguous"),
                        ));
                    }
                    found = Some(Resolved {
                        position: start + i,
                        data_type: relation.columns[i].1,
                        qualifier: &relation.qualifier,
                    });
                }
            }
            start += relation.columns.len();
        }
        match (found, qualifier) {
            (Some(resolved), _) => Ok(resolved),
            (None, Some(q)) if !qualifier_seen => {
                Err(SqlError::new(code::UNDEFINED_TABLE, format!("missing FROM-clause entry for table \"{q}\"")))
            }
            (None, Some(q)) => Err(SqlError::new(code::UNDEFINED_COLUMN, format!("column {q}.{name} does not exist"))),
            (None, None) => Err(SqlError::new(code::UNDEFINED_COLUMN, format!("column \"{name}\" does not exist"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Column;

    fn table(name: &str, columns: &[&str]) -> Table {
        let columns = columns
            .iter()
            .map(|c| Column { name: c.to_string(), data_type: DataType::Int4, nullable: true, default: None })
            .collect();
        Table { id: 1, name: name.into(), columns, primary_key: vec![], checks: vec![], indexes: vec![] }
    }

    #[test]
    fn names_resolve_to_positions_in_the_joined_row() {
        let scope =
            Scope::of(&table("a", &["id", "x"]), None).join(Scope::of(&table("b", &["id", "y"]), None)).unwrap();
        assert_eq!(scope.resolve(Some("b"), "id").unwrap().position, 2);
        assert_eq!(scope.resolve(None, "y").unwrap().position, 3);
        assert_eq!(scope.resolve(None, "id").err().unwrap().code, code::AMBIGUOUS_COLUMN);
        assert_eq!(scope.resolve(Some("c"), "id").err().unwrap().code, code::UNDEFINED_TABLE);
        assert_eq!(scope.resolve(Some("a"), "y").err().unwrap().message, "column a.y does not exist");
        assert_eq!(scope.ranges(), [0..2, 2..4]);
        let twice = Scope::of(&table("a", &["id"]), None).join(Scope::of(&table("a", &["id"]), None));
        assert_eq!(twice.err().unwrap().code, code::DUPLICATE_ALIAS);
    }
}
