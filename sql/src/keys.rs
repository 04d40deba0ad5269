//! Every key shape the SQL service writes, on an order-preserving encoding.
//!
//! | family        | key                                   | value |
//! |---------------|---------------------------------------|-------|
//! | `sql_meta`    | `last_stamp`                          | `u64` BE: the largest entry stamp applied |
//! | `sql_meta`    | `next_table_id`                       | `u64` BE: the next table id |
//! | `sql_meta`    | `catalog_version`                     | `u64` BE: the log index of the last entry that changed `sql_catalog` |
//! | `sql_meta`    | `rowid/` `table id: u32 BE`           | `u64` BE: the next hidden row id of a table without a primary key |
//! | `sql_catalog` | `table/` `table id: u32 BE`           | the table's descriptor (`catalog::Table`, postcard) |
//! | `sql_catalog` | `name/` table name                    | `u32` BE: the table id |
//! | `sql_catalog` | `checks/` `table id: u32 BE`          | the table's CHECK constraints (`Vec<catalog::Check>`, postcard) |
//! | `sql_catalog` | `indexes/` `table id: u32 BE`         | the table's indexes (`Vec<catalog::Index>`, postcard) |
//! | `sql_catalog` | `index/` index name                   | the name of the index's table |
//! | `sql_catalog` | `view/` view name                     | the view (`view::View`, postcard) |
//! | `sql_rows`    | `table id: u32 BE`, encoded primary key | the row (postcard `Vec<Value>`) |
//! | `sql_index`   | `index id: u32 BE`, encoded indexed values, encoded primary key | the encoded primary key |
//! | `sql_rows`    | `ff ff ff ff`, `stage id: u128 BE`, `chunk: u32 BE` | a staged COPY's data, as the client sent it (`copy`) |
//!
//! Relation id `u32::MAX` is never a table's or an index's: its range of
//! `sql_rows` holds the chunks of COPY data staged for a statement still
//! to run, beside the rows (in the family sized for bulk data).
//!
//! A primary key is encoded value by value so that byte order is the
//! values' order: a tag byte per type, integers big-endian with the sign
//! bit flipped, floats in their order-preserving bit form, text and bytea
//! with `00` escaped as `00 ff` and ended by `00 01`, dates and timestamps
//! as sign-flipped integers, uuids as their 16 bytes, numerics by sign,
//! exponent and digits (`numeric::encode_key`: equal values of different
//! scales encode equally). So one table's rows form one
//! contiguous range, in primary-key order.
//!
//! An index entry's key is the indexed values then the row's primary key
//! (its row key without the table id; the hidden row id for a table
//! without one), so entries with equal values stay distinct and one
//! index's entries for given leading values form one range. Every
//! encoded value starts with a tag byte below `ff`, so `prefix ++ ff`
//! bounds the range of keys that start with `prefix`.

use crate::value::Value;

pub const LAST_STAMP: &[u8] = b"last_stamp";

/// The relation id whose `sql_rows` range holds staged COPY data.
pub const STAGE_RELATION: u32 = u32::MAX;

/// `sql_rows`: chunk `seq` of the COPY data staged as `stage`.
pub fn stage_chunk(stage: u128, seq: u32) -> Vec<u8> {
    [STAGE_RELATION.to_be_bytes().as_slice(), &stage.to_be_bytes(), &seq.to_be_bytes()].concat()
}

/// `sql_rows`: the range of stage `stage`'s chunks.
pub fn stage(stage: u128) -> (Vec<u8>, Vec<u8>) {
    let start = [STAGE_RELATION.to_be_bytes().as_slice(), &stage.to_be_bytes()].concat();
    let end = [start.as_slice(), &[0xff; 5]].concat();
    (start, end)
}

pub const NEXT_TABLE_ID: &[u8] = b"next_table_id";

/// Written by every applied entry that changes `sql_catalog`, so a
/// catalog as of one version is the same on every replica and forever
/// (`catalog`'s cache of decoded tables relies on it).
pub const CATALOG_VERSION: &[u8] = b"catalog_version";

/// `sql_meta`: the next hidden row id of table `table`.
pub fn next_rowid(table: u32) -> Vec<u8> {
    [b"rowid/".as_slice(), &table.to_be_bytes()].concat()
}

/// `sql_catalog`: the descriptor of table `table`.
pub fn table(table: u32) -> Vec<u8> {
    [b"table/".as_slice(), &table.to_be_bytes()].concat()
}

/// `sql_catalog`: the CHECK constraints of table `table`.
pub fn checks(table: u32) -> Vec<u8> {
    [b"checks/".as_slice(), &table.to_be_bytes()].concat()
}

/// `sql_catalog`: the indexes of table `table`.
pub fn indexes(table: u32) -> Vec<u8> {
    [b"indexes/".as_slice(), &table.to_be_bytes()].concat()
}

/// `sql_catalog`: the name of the table of the index named `name`.
pub fn index_name(name: &str) -> Vec<u8> {
    [b"index/".as_slice(), name.as_bytes()].concat()
}

/// `sql_index`: the entry of index `index` for the row with key
/// `row_key` (as [`row`] makes it) and indexed values `values`.
pub fn index_entry(index: u32, values: &[Value], row_key: &[u8]) -> Vec<u8> {
    let mut out = index_prefix(index, values);
    out.extend_from_slice(primary_key_of(row_key));
    out
}

/// `sql_index`: the start of index `index`'s entries whose leading
/// values are `values`.
pub fn index_prefix(index: u32, values: &[Value]) -> Vec<u8> {
    row(index, values)
}

/// The end of the range of keys that start with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    [prefix, &[0xff]].concat()
}

/// The encoded primary key of a row key: what follows the table id.
pub fn primary_key_of(row_key: &[u8]) -> &[u8] {
    &row_key[4..]
}

/// The row key of table `table`'s row whose encoded primary key is
/// `primary_key`.
pub fn row_from_primary_key(table: u32, primary_key: &[u8]) -> Vec<u8> {
    [table.to_be_bytes().as_slice(), primary_key].concat()
}

/// `sql_catalog`: the view named `name`.
pub fn view(name: &str) -> Vec<u8> {
    [b"view/".as_slice(), name.as_bytes()].concat()
}

/// `sql_catalog`: the range of every view's key.
pub fn views() -> (Vec<u8>, Vec<u8>) {
    (b"view/".to_vec(), b"view0".to_vec())
}

/// `sql_catalog`: the id of the table named `name`.
pub fn table_name(name: &str) -> Vec<u8> {
    [b"name/".as_slice(), name.as_bytes()].concat()
}

/// `sql_catalog`: the range of every table's name key.
pub fn table_names() -> (Vec<u8>, Vec<u8>) {
    (b"name/".to_vec(), b"name0".to_vec())
}

/// `sql_rows` or `sql_index`: the range of relation `id`'s entries
/// (a table's rows, an index's entries), `[start, end)`.
pub fn rows(table: u32) -> (Vec<u8>, Vec<u8>) {
    (table.to_be_bytes().to_vec(), (table + 1).to_be_bytes().to_vec())
}

/// `sql_rows`: the row of table `table` with primary key `key`.
/// (The same shape as an index prefix: a relation id, then values.)
pub fn row(table: u32, key: &[Value]) -> Vec<u8> {
    let mut out = table.to_be_bytes().to_vec();
    encode_values(key, &mut out);
    out
}

/// `values` in the order-preserving encoding alone: equal exactly when the
/// values are (NULL equal to NULL), which is what GROUP BY and DISTINCT
/// compare.
pub fn values(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_values(values, &mut out);
    out
}

fn encode_values(values: &[Value], out: &mut Vec<u8>) {
    for value in values {
        encode_value(value, out);
    }
}

/// Appends `value`'s order-preserving encoding.
fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        // Primary keys are never NULL; the tag keeps the encoding total.
        Value::Null => out.push(0x05),
        Value::Bool(b) => out.extend([0x01, *b as u8]),
        Value::Int(n) => {
            out.push(0x02);
            out.extend(((*n as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float(x) => {
            out.push(0x03);
            // -0 equals 0: one encoding for both.
            let bits = if *x == 0.0 { 0.0f64.to_bits() } else { x.to_bits() };
            let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
            out.extend(ordered.to_be_bytes());
        }
        Value::Text(s) => {
            out.push(0x04);
            for &byte in s.as_bytes() {
                out.push(byte);
                if byte == 0 {
                    out.push(0xff);
                }
            }
            out.extend([0x00, 0x01]);
        }
        Value::Bytes(bytes) => {
            out.push(0x06);
            for &byte in bytes {
                out.push(byte);
                if byte == 0 {
                    out.push(0xff);
                }
            }
            out.extend([0x00, 0x01]);
        }
        Value::Date(days) => {
            out.push(0x07);
            out.extend(((*days as u32) ^ (1 << 31)).to_be_bytes());
        }
        Value::Timestamp(micros) => {
            out.push(0x08);
            out.extend(((*micros as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Uuid(uuid) => {
            out.push(0x09);
            out.extend(uuid.to_be_bytes());
        }
        Value::Numeric(value) => {
            out.push(0x0a);
            crate::numeric::encode_key(value, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_keys_sort_like_their_values() {
        let keys = [
            vec![Value::Int(i64::MIN)],
            vec![Value::Int(-1)],
            vec![Value::Int(0)],
            vec![Value::Int(7), Value::Text("a".into())],
            vec![Value::Int(7), Value::Text("a\0b".into())],
            vec![Value::Int(7), Value::Text("ab".into())],
            vec![Value::Int(i64::MAX)],
        ];
        let encoded: Vec<Vec<u8>> = keys.iter().map(|k| row(1, k)).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]), "{encoded:?}");
        let floats = [-1e300, -1.5, -0.0, 0.5, 2.0, f64::INFINITY];
        let encoded: Vec<Vec<u8>> = floats.iter().map(|x| row(1, &[Value::Float(*x)])).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
        let (start, end) = rows(1);
        assert!(encoded.iter().all(|k| start <= *k && *k < end));
        assert_eq!(end, 2u32.to_be_bytes());
    }
}
