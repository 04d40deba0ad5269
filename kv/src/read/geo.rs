//! Read semantics of the geo commands (`crate::geo`): positions, hashes and
//! distances of members, and searches that return their matches.

use bytes::Bytes;

use super::ReadCtx;
use crate::error::{CommandError, Result};
use crate::geo::{self, GeoFields, GeoMatch, GeoSearch};
use crate::record::KeyType;
use crate::reply::Reply;
use crate::sorted::{self, ZSet};

/// A search's match as a reply: the member alone, or an array of the
/// member and the fields asked for (always in this order: distance, hash,
/// coordinates).
fn matched(found: GeoMatch, fields: GeoFields) -> Reply {
    if fields == GeoFields::default() {
        return Reply::Bulk(found.member);
    }
    let mut reply = vec![Reply::Bulk(found.member)];
    if fields.distance {
        reply.push(Reply::bulk(geo::format_distance(found.distance)));
    }
    if fields.hash {
        reply.push(Reply::Int(found.score as i64));
    }
    if fields.coordinates {
        reply.push(Reply::Array(vec![Reply::HumanDouble(found.longitude), Reply::HumanDouble(found.latitude)]));
    }
    Reply::Array(reply)
}

impl ReadCtx<'_> {
    /// The score of each of `members` (`None` if absent), or `None` for an
    /// absent key.
    fn geo_scores(
        &self,
        key: &[u8],
        members: &[Bytes],
    ) -> Result<std::result::Result<Option<Vec<Option<f64>>>, CommandError>> {
        self.consistent(|ctx| {
            Ok(match ctx.collection(key, KeyType::ZSet)? {
                Err(error) => Err(error),
                Ok(None) => Ok(None),
                Ok(Some(header)) => {
                    let zset = ZSet { db: ctx.db, version: header.version, len: header.len };
                    let scores = members.iter().map(|member| sorted::score(ctx.reader, &zset, member));
                    Ok(Some(scores.collect::<Result<Vec<_>>>()?))
                }
            })
        })
    }

    /// GEOPOS: `[longitude, latitude]` per member, a null array if absent.
    pub fn geopos(&self, key: &[u8], members: &[Bytes]) -> Result<Reply> {
        Ok(match self.geo_scores(key, members)? {
            Err(error) => error.into(),
            Ok(scores) => Reply::Array(
                (0..members.len())
                    .map(|i| match scores.as_ref().and_then(|s| s[i]) {
                        None => Reply::NilArray,
                        Some(score) => {
                            let (longitude, latitude) = geo::position(score);
                            Reply::Array(vec![Reply::HumanDouble(longitude), Reply::HumanDouble(latitude)])
                        }
                    })
                    .collect(),
            ),
        })
    }

    /// GEOHASH: the standard 11-character geohash per member, nil if absent.
    pub fn geohash(&self, key: &[u8], members: &[Bytes]) -> Result<Reply> {
        Ok(match self.geo_scores(key, members)? {
            Err(error) => error.into(),
            Ok(scores) => Reply::Array(
                (0..members.len())
                    .map(|i| scores.as_ref().and_then(|s| s[i]).map_or(Reply::Nil, |s| Reply::bulk(geo::geohash(s))))
                    .collect(),
            ),
        })
    }

    /// GEODIST: the distance in `to_meters` units between two members; nil
    /// if either (or the key) is absent.
    pub fn geodist(&self, key: &[u8], from: &Bytes, to: &Bytes, to_meters: f64) -> Result<Reply> {
        Ok(match self.geo_scores(key, &[from.clone(), to.clone()])? {
            Err(error) => error.into(),
            Ok(Some(scores)) => match scores[..] {
                [Some(a), Some(b)] => {
                    let ((a_longitude, a_latitude), (b_longitude, b_latitude)) = (geo::position(a), geo::position(b));
                    let meters = geo::distance(a_longitude, a_latitude, b_longitude, b_latitude);
                    Reply::bulk(geo::format_distance(meters / to_meters))
                }
                _ => Reply::Nil,
            },
            Ok(None) => Reply::Nil,
        })
    }

    /// The matches of `query` in the sorted set at `key` (none if absent).
    pub(crate) fn geo_matches(
        &self,
        key: &[u8],
        query: &GeoSearch,
    ) -> Result<std::result::Result<Vec<GeoMatch>, CommandError>> {
        self.consistent(|ctx| match ctx.collection(key, KeyType::ZSet)? {
            Err(error) => Ok(Err(error)),
            Ok(None) => Ok(Ok(Vec::new())),
            Ok(Some(header)) => {
                let zset = ZSet { db: ctx.db, version: header.version, len: header.len };
                geo::search(ctx.reader, &zset, query)
            }
        })
    }

    /// GEOSEARCH, GEORADIUS(BYMEMBER) without STORE, and their `_RO` forms.
    pub fn geosearch(&self, key: &[u8], query: &GeoSearch, fields: GeoFields) -> Result<Reply> {
        Ok(match self.geo_matches(key, query)? {
            Err(error) => error.into(),
            Ok(found) => Reply::Array(found.into_iter().map(|found| matched(found, fields)).collect()),
        })
    }
}
