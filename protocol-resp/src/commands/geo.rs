//! Geo commands: parse, call `kv`, reply. A geo index is a sorted set
//! scored by geohash (`kv::geo`): GEOADD is ZADD with those scores, the
//! searches read the set (or, with STORE, write their result through the
//! log, computed at apply by every replica).
//!
//! Arguments are checked here, before the key is read; Redis reads the
//! key first, so where a request has both a bad argument and a key of the
//! wrong type (or a missing FROMMEMBER member), Redis names the key's
//! problem and Seshat the argument's.

use bytes::Bytes;
use kv::geo::{self, GeoCenter, GeoFields, GeoOrder, GeoSearch, GeoShape};
use kv::{CommandError, ReadOp, WriteOp, ZAddFlags};

use super::flags::{DENYOOM, READONLY, WRITE};
use super::{read, spec, write, Outcome, Spec};
use crate::args::Args;
use crate::session::Session;

type Result = std::result::Result<Outcome, CommandError>;
type Parsed<T> = std::result::Result<T, CommandError>;

fn other(text: impl Into<String>) -> CommandError {
    CommandError::Other(text.into())
}

fn float(bytes: &[u8], error: &str) -> Parsed<f64> {
    kv::number::parse_f64(bytes).ok_or_else(|| other(error))
}

/// `longitude latitude`, within the storable ranges.
fn coordinates(longitude: &[u8], latitude: &[u8]) -> Parsed<(f64, f64)> {
    let longitude = kv::number::parse_f64(longitude).ok_or(CommandError::NotFloat)?;
    let latitude = kv::number::parse_f64(latitude).ok_or(CommandError::NotFloat)?;
    if !(geo::LONGITUDE_MIN..=geo::LONGITUDE_MAX).contains(&longitude)
        || !(geo::LATITUDE_MIN..=geo::LATITUDE_MAX).contains(&latitude)
    {
        return Err(other(format!("ERR invalid longitude,latitude pair {longitude:.6},{latitude:.6}")));
    }
    Ok((longitude, latitude))
}

/// `m`, `km`, `ft` or `mi`: meters per unit.
fn unit(bytes: &[u8]) -> Parsed<f64> {
    geo::unit(bytes).ok_or_else(|| other("ERR unsupported unit provided. please use M, KM, FT, MI"))
}

/// `radius unit`: the radius in units and meters per unit.
fn radius(radius: &[u8], unit_name: &[u8]) -> Parsed<(GeoShape, f64)> {
    let radius = float(radius, "ERR need numeric radius")?;
    if radius < 0.0 {
        return Err(other("ERR radius cannot be negative"));
    }
    Ok((GeoShape::Radius(radius), unit(unit_name)?))
}

/// `width height unit`.
fn bounding_box(width: &[u8], height: &[u8], unit_name: &[u8]) -> Parsed<(GeoShape, f64)> {
    let width = float(width, "ERR need numeric width")?;
    let height = float(height, "ERR need numeric height")?;
    if width < 0.0 || height < 0.0 {
        return Err(other("ERR height or width cannot be negative"));
    }
    Ok((GeoShape::Box { width, height }, unit(unit_name)?))
}

fn geoadd(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let words = args.rest();
    let mut flags = ZAddFlags::default();
    let mut options = 0;
    for word in &words {
        let flag = match word.to_ascii_uppercase().as_slice() {
            b"NX" => &mut flags.nx,
            b"XX" => &mut flags.xx,
            b"CH" => &mut flags.ch,
            _ => break,
        };
        *flag = true;
        options += 1;
    }
    let items = &words[options..];
    if items.is_empty() || !items.len().is_multiple_of(3) || (flags.nx && flags.xx) {
        return Err(CommandError::Syntax);
    }
    let mut pairs = Vec::with_capacity(items.len() / 3);
    for item in items.chunks(3) {
        let (longitude, latitude) = coordinates(&item[0], &item[1])?;
        let score = geo::score(longitude, latitude).expect("coordinates() checked the ranges");
        pairs.push((score as f64, item[2].clone()));
    }
    write(session, WriteOp::ZAdd { key, flags, pairs })
}

fn geopos(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::GeoPos { key, members: args.rest() })
}

fn geohash(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    read(session, ReadOp::GeoHash { key, members: args.rest() })
}

fn geodist(session: &mut Session, args: &mut Args) -> Result {
    let (key, from, to) = (args.next()?, args.next()?, args.next()?);
    if args.remaining() > 1 {
        return Err(CommandError::Syntax);
    }
    let to_meters = match args.next_opt() {
        Some(name) => unit(&name)?,
        None => 1.0,
    };
    read(session, ReadOp::GeoDist { key, from, to, to_meters })
}

/// Which search command is parsing: they share options, not all of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// GEORADIUS and GEORADIUSBYMEMBER (`store`: STORE and STOREDIST
    /// accepted, so not the `_RO` forms).
    Radius { store: bool },
    /// GEOSEARCH (`store`: GEOSEARCHSTORE).
    Search { store: bool },
}

/// A parsed search: the query, the reply's fields, and where to store the
/// result (`Some((key, by distance))`) instead of replying it.
struct SearchRequest {
    query: GeoSearch,
    fields: GeoFields,
    store: Option<(Bytes, bool)>,
}

/// The options after a search's fixed arguments, read as Redis reads
/// them. GEORADIUS and GEORADIUSBYMEMBER pass the `center` and `shape` of
/// their fixed arguments; GEOSEARCH takes them from FROMMEMBER/FROMLONLAT
/// and BYRADIUS/BYBOX; GEOSEARCHSTORE passes its destination as `store`.
fn search_options(
    args: &mut Args,
    form: Form,
    mut center: Option<GeoCenter>,
    mut shape: Option<(GeoShape, f64)>,
    mut store: Option<(Bytes, bool)>,
) -> Parsed<SearchRequest> {
    let name = String::from_utf8_lossy(args.command_name()).into_owned();
    let words = args.rest();
    let remaining = words.len();
    let search = matches!(form, Form::Search { .. });
    let mut fields = GeoFields::default();
    let (mut order, mut count, mut any) = (GeoOrder::Unsorted, 0, false);
    let (mut from_member, mut from_point, mut by_radius, mut by_box) = (false, false, false, false);
    let mut i = 0;
    while i < remaining {
        let option = words[i].to_ascii_uppercase();
        match option.as_slice() {
            b"WITHDIST" => fields.distance = true,
            b"WITHHASH" => fields.hash = true,
            b"WITHCOORD" => fields.coordinates = true,
            b"ANY" => any = true,
            b"ASC" => order = GeoOrder::Nearest,
            b"DESC" => order = GeoOrder::Farthest,
            b"COUNT" if i + 1 < remaining => {
                let n = kv::number::parse_i64(&words[i + 1]).ok_or(CommandError::NotInteger)?;
                if n <= 0 {
                    return Err(other("ERR COUNT must be > 0"));
                }
                count = n as u64;
                i += 1;
            }
            b"STORE" | b"STOREDIST" if i + 1 < remaining && form == (Form::Radius { store: true }) => {
                store = Some((words[i + 1].clone(), option == b"STOREDIST"));
                i += 1;
            }
            b"STOREDIST" if form == (Form::Search { store: true }) => {
                if let Some((_, by_distance)) = &mut store {
                    *by_distance = true;
                }
            }
            b"FROMMEMBER" if i + 1 < remaining && search && !from_point => {
                center = Some(GeoCenter::Member(words[i + 1].clone()));
                from_member = true;
                i += 1;
            }
            b"FROMLONLAT" if i + 2 < remaining && search && !from_member => {
                let (longitude, latitude) = coordinates(&words[i + 1], &words[i + 2])?;
                center = Some(GeoCenter::Point { longitude, latitude });
                from_point = true;
                i += 2;
            }
            b"BYRADIUS" if i + 2 < remaining && search && !by_box => {
                shape = Some(radius(&words[i + 1], &words[i + 2])?);
                by_radius = true;
                i += 2;
            }
            b"BYBOX" if i + 3 < remaining && search && !by_radius => {
                shape = Some(bounding_box(&words[i + 1], &words[i + 2], &words[i + 3])?);
                by_box = true;
                i += 3;
            }
            _ => return Err(CommandError::Syntax),
        }
        i += 1;
    }
    if store.is_some() && fields != GeoFields::default() {
        let what = if search { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(other(format!("ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let Some(center) = center else {
        return Err(other(format!("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    };
    let Some((shape, to_meters)) = shape else {
        return Err(other(format!("ERR exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    };
    if any && count == 0 {
        return Err(other("ERR the ANY argument requires COUNT argument"));
    }
    let query = GeoSearch { center, shape, to_meters, order, count, any };
    Ok(SearchRequest { query, fields, store })
}

/// Runs a parsed search on `key`: a read, or a write if it stores.
fn run(session: &mut Session, key: Bytes, request: SearchRequest, form: Form) -> Result {
    let SearchRequest { query: search, fields, store } = request;
    let georadius = matches!(form, Form::Radius { .. });
    match store {
        Some((destination, store_distance)) => {
            write(session, WriteOp::GeoSearchStore { destination, source: key, search, store_distance, georadius })
        }
        None => read(session, ReadOp::GeoSearch { key, search, fields }),
    }
}

/// GEORADIUS key longitude latitude radius unit [options].
fn radius_around_point(session: &mut Session, args: &mut Args, store: bool) -> Result {
    let key = args.next()?;
    let (longitude, latitude, distance, unit_name) = (args.next()?, args.next()?, args.next()?, args.next()?);
    let (longitude, latitude) = coordinates(&longitude, &latitude)?;
    let shape = radius(&distance, &unit_name)?;
    let center = GeoCenter::Point { longitude, latitude };
    let form = Form::Radius { store };
    let request = search_options(args, form, Some(center), Some(shape), None)?;
    run(session, key, request, form)
}

/// GEORADIUSBYMEMBER key member radius unit [options].
fn radius_around_member(session: &mut Session, args: &mut Args, store: bool) -> Result {
    let (key, member, distance, unit_name) = (args.next()?, args.next()?, args.next()?, args.next()?);
    let shape = radius(&distance, &unit_name)?;
    let form = Form::Radius { store };
    let request = search_options(args, form, Some(GeoCenter::Member(member)), Some(shape), None)?;
    run(session, key, request, form)
}

fn georadius(session: &mut Session, args: &mut Args) -> Result {
    radius_around_point(session, args, true)
}

fn georadius_ro(session: &mut Session, args: &mut Args) -> Result {
    radius_around_point(session, args, false)
}

fn georadiusbymember(session: &mut Session, args: &mut Args) -> Result {
    radius_around_member(session, args, true)
}

fn georadiusbymember_ro(session: &mut Session, args: &mut Args) -> Result {
    radius_around_member(session, args, false)
}

fn geosearch(session: &mut Session, args: &mut Args) -> Result {
    let key = args.next()?;
    let form = Form::Search { store: false };
    let request = search_options(args, form, None, None, None)?;
    run(session, key, request, form)
}

fn geosearchstore(session: &mut Session, args: &mut Args) -> Result {
    let (destination, source) = (args.next()?, args.next()?);
    let form = Form::Search { store: true };
    let request = search_options(args, form, None, None, Some((destination, false)))?;
    run(session, source, request, form)
}

pub(super) const COMMANDS: &[Spec] = &[
    spec!(
        "geoadd",
        -5,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "geo",
        "3.2.0",
        "Adds one or more members to a geospatial index. The key is created if it doesn't exist.",
        geoadd
    ),
    spec!(
        "geodist",
        -4,
        READONLY,
        1,
        1,
        1,
        "geo",
        "3.2.0",
        "Returns the distance between two members of a geospatial index.",
        geodist
    ),
    spec!(
        "geohash",
        -2,
        READONLY,
        1,
        1,
        1,
        "geo",
        "3.2.0",
        "Returns members from a geospatial index as geohash strings.",
        geohash
    ),
    spec!(
        "geopos",
        -2,
        READONLY,
        1,
        1,
        1,
        "geo",
        "3.2.0",
        "Returns the longitude and latitude of members from a geospatial index.",
        geopos
    ),
    spec!(
        "georadius",
        -6,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "geo",
        "3.2.0",
        "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result.",
        georadius
    ),
    spec!(
        "georadius_ro",
        -6,
        READONLY,
        1,
        1,
        1,
        "geo",
        "3.2.10",
        "Returns members from a geospatial index that are within a distance from a coordinate.",
        georadius_ro
    ),
    spec!(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        1,
        1,
        1,
        "geo",
        "3.2.0",
        "Queries a geospatial index for members within a distance from a member, optionally stores the result.",
        georadiusbymember
    ),
    spec!(
        "georadiusbymember_ro",
        -5,
        READONLY,
        1,
        1,
        1,
        "geo",
        "3.2.10",
        "Returns members from a geospatial index that are within a distance from a member.",
        georadiusbymember_ro
    ),
    spec!(
        "geosearch",
        -7,
        READONLY,
        1,
        1,
        1,
        "geo",
        "6.2.0",
        "Queries a geospatial index for members inside an area of a box or a circle.",
        geosearch
    ),
    spec!(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        1,
        2,
        1,
        "geo",
        "6.2.0",
        "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result.",
        geosearchstore
    ),
];
