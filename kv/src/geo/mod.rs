//! Geo indexes: sorted sets whose scores are 52-bit geohashes, searched as
//! Redis 7.0 searches them.
//!
//! GEOADD is ZADD with the score [`score`] computes, so a geo index is an
//! ordinary sorted set (ZRANGE, ZREM, DUMP, TYPE all apply). A search
//! (GEOSEARCH, GEORADIUS and their STORE forms) scans at most nine score
//! ranges, one per geohash cell around the centre ([`hash::search_cells`]),
//! and keeps the members inside the shape. The cells, the order they are
//! scanned in, the distance arithmetic and the sort are Redis's, so the
//! same set gives the same members in the same order with the same
//! distances, including the unsorted order of a search without ASC/DESC.
//! Ties in distance keep scan order (a stable sort); Redis's partial sort
//! under COUNT may order exact ties otherwise.
//!
//! Searches run on a [`Reader`]: the read path's snapshot for GEOSEARCH,
//! the apply's transaction for GEOSEARCHSTORE, so a stored result is
//! computed by every replica from the same state.

mod hash;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage::Reader;

pub use hash::{distance, format_distance, geohash, position, score, unit};
pub use hash::{LATITUDE_MAX, LATITUDE_MIN, LONGITUDE_MAX, LONGITUDE_MIN};

use crate::error::{CommandError, Result};
use crate::sorted::{self, ZSet};

/// Where a search is centred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GeoCenter {
    /// FROMMEMBER, GEORADIUSBYMEMBER: a member's position.
    Member(Bytes),
    /// FROMLONLAT, GEORADIUS.
    Point { longitude: f64, latitude: f64 },
}

/// The area searched, in the search's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum GeoShape {
    /// BYRADIUS, GEORADIUS.
    Radius(f64),
    /// BYBOX: an axis-aligned box centred on the centre.
    Box { width: f64, height: f64 },
}

/// ASC, DESC or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GeoOrder {
    Unsorted,
    Nearest,
    Farthest,
}

/// A search's query, as every geo search command takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoSearch {
    pub center: GeoCenter,
    pub shape: GeoShape,
    /// Meters per unit of the shape's lengths and of the distances
    /// reported or stored ([`unit`]).
    pub to_meters: f64,
    pub order: GeoOrder,
    /// COUNT (0: no limit).
    pub count: u64,
    /// ANY: stop at the first `count` matches found, not the nearest ones.
    pub any: bool,
}

/// The WITHDIST, WITHHASH and WITHCOORD options of a search's reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeoFields {
    pub distance: bool,
    pub hash: bool,
    pub coordinates: bool,
}

/// A member a search found.
#[derive(Debug, Clone)]
pub(crate) struct GeoMatch {
    pub member: Bytes,
    pub score: f64,
    pub longitude: f64,
    pub latitude: f64,
    /// From the centre, in the search's unit.
    pub distance: f64,
}

/// The members of `zset` that `query` selects, in reply order; an error if
/// the centre is a member the set does not have.
pub(crate) fn search(
    reader: &dyn Reader,
    zset: &ZSet,
    query: &GeoSearch,
) -> Result<std::result::Result<Vec<GeoMatch>, CommandError>> {
    let center = match &query.center {
        GeoCenter::Point { longitude, latitude } => (*longitude, *latitude),
        GeoCenter::Member(member) => match sorted::score(reader, zset, member)? {
            Some(score) => position(score),
            None => return Ok(Err(CommandError::Other("ERR could not decode requested zset member".into()))),
        },
    };
    // ANY stops the scan at `count` matches; otherwise every match is
    // found and the nearest kept.
    let limit = if query.any { query.count } else { 0 };
    let full = |found: &Vec<GeoMatch>| limit > 0 && found.len() as u64 >= limit;
    let cells = hash::search_cells(center, query.shape, query.to_meters);
    let mut found = Vec::new();
    // Redis skips a cell equal to the last one scanned, except when that
    // was the centre's (index 0).
    let mut last_scanned = 0;
    for (i, cell) in cells.iter().enumerate() {
        let Some(cell) = cell else { continue };
        if last_scanned != 0 && cells[last_scanned] == Some(*cell) {
            continue;
        }
        if full(&found) {
            break;
        }
        let (min, max) = cell.scores();
        for entry in sorted::score_window(reader, zset, min as f64, max as f64) {
            let (member, score) = entry?;
            let (longitude, latitude) = position(score);
            if let Some(distance) = hash::within(center, query.shape, query.to_meters, longitude, latitude) {
                found.push(GeoMatch { member, score, longitude, latitude, distance });
            }
            if full(&found) {
                break;
            }
        }
        last_scanned = i;
    }
    // COUNT without ANY wants the nearest `count`.
    let order = match query.order {
        GeoOrder::Unsorted if query.count > 0 && !query.any => GeoOrder::Nearest,
        order => order,
    };
    let by_distance =
        |a: &GeoMatch, b: &GeoMatch| a.distance.partial_cmp(&b.distance).unwrap_or(std::cmp::Ordering::Equal);
    match order {
        GeoOrder::Unsorted => {}
        GeoOrder::Nearest => found.sort_by(by_distance),
        GeoOrder::Farthest => found.sort_by(|a, b| by_distance(b, a)),
    }
    if query.count > 0 {
        found.truncate(query.count as usize);
    }
    for found in &mut found {
        found.distance /= query.to_meters;
    }
    Ok(Ok(found))
}
