//! Redis's geohash arithmetic (its `geohash.c` and `geohash_helper.c`),
//! reimplemented operation for operation so that every score, decoded
//! position, distance and search cell equals redis-server's to the bit.
//!
//! A position is a 52-bit interleaving of 26 bits of latitude (even bits)
//! and 26 bits of longitude (odd bits), each the coordinate's offset in
//! its range scaled to `2^26`. Latitudes stop at ±85.05112878 (the Web
//! Mercator limit), so the poles cannot be stored. A score decodes to the
//! centre of its cell, which is why GEOPOS does not give back exactly what
//! GEOADD was given.

use std::f64::consts::PI;

use super::GeoShape;

pub const LONGITUDE_MIN: f64 = -180.0;
pub const LONGITUDE_MAX: f64 = 180.0;
pub const LATITUDE_MIN: f64 = -85.05112878;
pub const LATITUDE_MAX: f64 = 85.05112878;
/// Bits per coordinate of a stored score (2 × 26 = 52, a double's mantissa).
const STEP_MAX: u8 = 26;
/// The quadratic mean radius of WGS-84 that Redis uses for every distance.
const EARTH_RADIUS_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const DEGREES_TO_RADIANS: f64 = PI / 180.0;

/// A coordinate range.
#[derive(Debug, Clone, Copy)]
struct Span {
    min: f64,
    max: f64,
}

/// The ranges of stored positions.
const LONGITUDES: Span = Span { min: LONGITUDE_MIN, max: LONGITUDE_MAX };
const LATITUDES: Span = Span { min: LATITUDE_MIN, max: LATITUDE_MAX };

/// A geohash cell: `step` bits per coordinate, interleaved. The all-zero
/// cell stands for "no cell" (a neighbour excluded from a search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    const NONE: Cell = Cell { bits: 0, step: 0 };

    fn is_none(self) -> bool {
        self == Cell::NONE
    }

    /// The scores `[min, max)` of every position inside the cell.
    pub fn scores(self) -> (u64, u64) {
        let shift = 52 - u32::from(self.step) * 2;
        (self.bits << shift, (self.bits + 1) << shift)
    }
}

/// The rectangle a cell covers.
#[derive(Debug, Clone, Copy)]
struct Area {
    longitude: Span,
    latitude: Span,
}

/// Spreads `x`'s bits to the even positions and `y`'s to the odd ones.
fn interleave(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v);
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// The inverse of [`interleave`]: the even bits in the low half, the odd
/// bits in the high half.
fn deinterleave(bits: u64) -> u64 {
    fn gather(v: u64) -> u64 {
        let mut v = v & 0x5555_5555_5555_5555;
        v = (v | (v >> 1)) & 0x3333_3333_3333_3333;
        v = (v | (v >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v >> 4)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v >> 8)) & 0x0000_FFFF_0000_FFFF;
        (v | (v >> 16)) & 0x0000_0000_FFFF_FFFF
    }
    gather(bits) | (gather(bits >> 1) << 32)
}

/// The cell of `step` bits holding a position, in the given ranges; `None`
/// outside the storable ranges.
fn encode_in(longitudes: Span, latitudes: Span, longitude: f64, latitude: f64, step: u8) -> Option<Cell> {
    let storable =
        (LONGITUDE_MIN..=LONGITUDE_MAX).contains(&longitude) && (LATITUDE_MIN..=LATITUDE_MAX).contains(&latitude);
    let inside =
        (longitudes.min..=longitudes.max).contains(&longitude) && (latitudes.min..=latitudes.max).contains(&latitude);
    if !storable || !inside {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let latitude_offset = (latitude - latitudes.min) / (latitudes.max - latitudes.min) * scale;
    let longitude_offset = (longitude - longitudes.min) / (longitudes.max - longitudes.min) * scale;
    // The offsets truncate toward zero, as C's double-to-integer conversion.
    Some(Cell { bits: interleave(latitude_offset as u32, longitude_offset as u32), step })
}

/// The score GEOADD stores for a position, or `None` if the position is
/// outside the storable ranges.
pub fn score(longitude: f64, latitude: f64) -> Option<u64> {
    let cell = encode_in(LONGITUDES, LATITUDES, longitude, latitude, STEP_MAX)?;
    Some(cell.scores().0)
}

fn decode_in(longitudes: Span, latitudes: Span, cell: Cell) -> Area {
    let separated = deinterleave(cell.bits);
    let latitude_cell = separated as u32;
    let longitude_cell = (separated >> 32) as u32;
    let cells = (1u64 << cell.step) as f64;
    let at = |span: Span, index: u32| span.min + (f64::from(index) / cells) * (span.max - span.min);
    Area {
        latitude: Span { min: at(latitudes, latitude_cell), max: at(latitudes, latitude_cell.wrapping_add(1)) },
        longitude: Span { min: at(longitudes, longitude_cell), max: at(longitudes, longitude_cell.wrapping_add(1)) },
    }
}

fn decode(cell: Cell) -> Area {
    decode_in(LONGITUDES, LATITUDES, cell)
}

/// C's `(uint64_t)score` as x86-64 computes it (undefined in C outside
/// `[0, 2^64)`, so this is what redis-server does on x86-64): negative
/// values wrap through `i64`, values past `i64` go through the
/// "integer indefinite" `i64::MIN`. Scores GEOADD wrote convert exactly.
fn c_double_to_u64(value: f64) -> u64 {
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    let truncate = |value: f64| {
        if (-TWO_TO_63..TWO_TO_63).contains(&value) {
            value as i64 as u64
        } else {
            i64::MIN as u64
        }
    };
    if value < TWO_TO_63 {
        truncate(value)
    } else {
        truncate(value - TWO_TO_63) ^ (1 << 63)
    }
}

/// The position (longitude, latitude) a sorted-set score stands for: the
/// centre of its cell, clamped to the storable ranges. Any score decodes,
/// as in Redis (a score no GEOADD wrote gives some position).
pub fn position(score: f64) -> (f64, f64) {
    let area = decode(Cell { bits: c_double_to_u64(score), step: STEP_MAX });
    let longitude = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONGITUDE_MIN, LONGITUDE_MAX);
    let latitude = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LATITUDE_MIN, LATITUDE_MAX);
    (longitude, latitude)
}

/// GEOHASH's 11-character standard geohash of a score: the decoded
/// position re-encoded over latitudes ±90, the eleventh character always
/// `0` (only 52 bits exist).
pub fn geohash(score: f64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (longitude, latitude) = position(score);
    let standard = Span { min: -90.0, max: 90.0 };
    let bits = encode_in(LONGITUDES, standard, longitude, latitude, STEP_MAX).map_or(0, |cell| cell.bits);
    (0..11)
        .map(|i| {
            let index = if i == 10 { 0 } else { (bits >> (52 - (i + 1) * 5)) & 0x1f };
            ALPHABET[index as usize] as char
        })
        .collect()
}

fn radians(degrees: f64) -> f64 {
    degrees * DEGREES_TO_RADIANS
}

fn degrees(radians: f64) -> f64 {
    radians / DEGREES_TO_RADIANS
}

/// The distance in meters along a meridian between two latitudes.
fn latitude_distance(latitude1: f64, latitude2: f64) -> f64 {
    EARTH_RADIUS_METERS * (radians(latitude2) - radians(latitude1)).abs()
}

/// The great-circle (haversine) distance in meters between two positions.
pub fn distance(longitude1: f64, latitude1: f64, longitude2: f64, latitude2: f64) -> f64 {
    let v = ((radians(longitude2) - radians(longitude1)) / 2.0).sin();
    if v == 0.0 {
        return latitude_distance(latitude1, latitude2);
    }
    let (latitude1, latitude2) = (radians(latitude1), radians(latitude2));
    let u = ((latitude2 - latitude1) / 2.0).sin();
    let a = u * u + latitude1.cos() * latitude2.cos() * v * v;
    2.0 * EARTH_RADIUS_METERS * a.sqrt().asin()
}

/// How far `(longitude, latitude)` is from `center`, if it is inside
/// `shape` (whose lengths are in units of `to_meters` meters) around it.
/// The arithmetic is Redis's, in its order, so a point on the edge falls
/// on the same side.
pub(crate) fn within(
    center: (f64, f64),
    shape: GeoShape,
    to_meters: f64,
    longitude: f64,
    latitude: f64,
) -> Option<f64> {
    match shape {
        GeoShape::Radius(radius) => {
            let distance = distance(center.0, center.1, longitude, latitude);
            (distance <= radius * to_meters).then_some(distance)
        }
        GeoShape::Box { width, height } => {
            if latitude_distance(latitude, center.1) > height * to_meters / 2.0 {
                return None;
            }
            if distance(longitude, latitude, center.0, latitude) > width * to_meters / 2.0 {
                return None;
            }
            Some(distance(center.0, center.1, longitude, latitude))
        }
    }
}

/// How many bits per coordinate the search cells get, so that a 3×3 block
/// of them covers `radius` meters around `latitude`.
fn steps_for_radius(mut radius: f64, latitude: f64) -> u8 {
    if radius == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while radius < MERCATOR_MAX {
        radius *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&latitude) {
        step -= 1;
        if !(-80.0..=80.0).contains(&latitude) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// `[min longitude, min latitude, max longitude, max latitude]` of the
/// area around `center`.
fn bounding_box(center: (f64, f64), half_width: f64, half_height: f64) -> [f64; 4] {
    let (longitude, latitude) = center;
    let latitude_delta = degrees(half_height / EARTH_RADIUS_METERS);
    let longitude_delta_top = degrees(half_width / EARTH_RADIUS_METERS / radians(latitude + latitude_delta).cos());
    let longitude_delta_bottom = degrees(half_width / EARTH_RADIUS_METERS / radians(latitude - latitude_delta).cos());
    // The wider edge is the one nearer the equator.
    let longitude_delta = if latitude < 0.0 { longitude_delta_bottom } else { longitude_delta_top };
    [longitude - longitude_delta, latitude - latitude_delta, longitude + longitude_delta, latitude + latitude_delta]
}

/// The bits of a cell's longitude (odd positions) and latitude (even).
const LONGITUDE_BITS: u64 = 0xaaaa_aaaa_aaaa_aaaa;
const LATITUDE_BITS: u64 = 0x5555_5555_5555_5555;

/// Moves a cell one step (`direction` +1 or -1) along the coordinate whose
/// bits `axis` selects: the other coordinate's bits, set, carry the
/// increment (or borrow) across them.
fn move_along(cell: &mut Cell, axis: u64, direction: i8) {
    if direction == 0 {
        return;
    }
    let width = 64 - u32::from(cell.step) * 2;
    let filler = !axis >> width;
    let moving = cell.bits & axis;
    let moved = match direction > 0 {
        true => moving.wrapping_add(filler + 1),
        false => (moving | filler).wrapping_sub(filler + 1),
    };
    cell.bits = (moved & (axis >> width)) | (cell.bits & !axis);
}

fn neighbour(cell: Cell, east: i8, north: i8) -> Cell {
    let mut moved = cell;
    move_along(&mut moved, LONGITUDE_BITS, east);
    move_along(&mut moved, LATITUDE_BITS, north);
    moved
}

/// The cells a search scans, in Redis's order: the centre's, then north,
/// south, east, west, north-east, north-west, south-east, south-west;
/// `None` for neighbours that cannot hold a match.
pub(crate) fn search_cells(center: (f64, f64), shape: GeoShape, to_meters: f64) -> [Option<Cell>; 9] {
    let (half_width, half_height, radius) = match shape {
        GeoShape::Radius(radius) => (to_meters * radius, to_meters * radius, radius * to_meters),
        GeoShape::Box { width, height } => (
            to_meters * (width / 2.0),
            to_meters * (height / 2.0),
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt() * to_meters,
        ),
    };
    let [min_longitude, min_latitude, max_longitude, max_latitude] = bounding_box(center, half_width, half_height);
    let around = |step| {
        let cell = encode_in(LONGITUDES, LATITUDES, center.0, center.1, step).unwrap_or(Cell::NONE);
        let neighbours = [
            neighbour(cell, 0, 1),
            neighbour(cell, 0, -1),
            neighbour(cell, 1, 0),
            neighbour(cell, -1, 0),
            neighbour(cell, 1, 1),
            neighbour(cell, -1, 1),
            neighbour(cell, 1, -1),
            neighbour(cell, -1, -1),
        ];
        (cell, neighbours)
    };
    let mut step = steps_for_radius(radius, center.1);
    let (mut cell, mut neighbours) = around(step);
    // Near a cell's edge, one 3×3 block may not reach far enough: use
    // cells twice as large.
    let [north, south, east, west] = [0, 1, 2, 3].map(|i| decode(neighbours[i]));
    let too_small = north.latitude.max < max_latitude
        || south.latitude.min > min_latitude
        || east.longitude.max < max_longitude
        || west.longitude.min > min_longitude;
    if step > 1 && too_small {
        step -= 1;
        (cell, neighbours) = around(step);
    }
    let area = decode(cell);
    let mut cells = [Some(cell), None, None, None, None, None, None, None, None];
    for (slot, neighbour) in cells[1..].iter_mut().zip(neighbours) {
        *slot = Some(neighbour);
    }
    if step >= 2 {
        // Indexes into `cells`: 1 N, 2 S, 3 E, 4 W, 5 NE, 6 NW, 7 SE, 8 SW.
        let mut exclude = |indexes: [usize; 3]| indexes.iter().for_each(|i| cells[*i] = None);
        if area.latitude.min < min_latitude {
            exclude([2, 8, 7]);
        }
        if area.latitude.max > max_latitude {
            exclude([1, 5, 6]);
        }
        if area.longitude.min < min_longitude {
            exclude([4, 8, 6]);
        }
        if area.longitude.max > max_longitude {
            exclude([3, 7, 5]);
        }
    }
    cells.map(|cell| cell.filter(|c| !c.is_none()))
}

/// Meters per unit of a distance argument (`m`, `km`, `ft`, `mi`, any case).
pub fn unit(name: &[u8]) -> Option<f64> {
    match name.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

/// A distance as Redis replies it: rounded (half to even) to 4 decimals.
pub fn format_distance(distance: f64) -> String {
    if distance == 0.0 {
        return "0.0000".into();
    }
    let scaled = (distance * 10000.0).round_ties_even() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let magnitude = scaled.unsigned_abs();
    format!("{sign}{}.{:04}", magnitude / 10000, magnitude % 10000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Palermo and Catania, the example of Redis's GEOADD documentation,
    /// with redis-server 7.0's answers.
    const PALERMO: (f64, f64) = (13.361389, 38.115556);
    const CATANIA: (f64, f64) = (15.087269, 37.502669);

    #[test]
    fn scores_positions_and_hashes_match_redis() {
        assert_eq!(score(PALERMO.0, PALERMO.1), Some(3479099956230698));
        assert_eq!(score(CATANIA.0, CATANIA.1), Some(3479447370796909));
        let (longitude, latitude) = position(3479099956230698.0);
        assert_eq!(crate::number::format_human(longitude), "13.36138933897018433");
        assert_eq!(crate::number::format_human(latitude), "38.11555639549629859");
        assert_eq!(geohash(3479099956230698.0), "sqc8b49rny0");
        assert_eq!(geohash(3479447370796909.0), "sqdtr74hyu0");
    }

    #[test]
    fn distances_match_redis() {
        let (a, b) = (position(3479099956230698.0), position(3479447370796909.0));
        assert_eq!(format_distance(distance(a.0, a.1, b.0, b.1)), "166274.1516");
        assert_eq!(format_distance(distance(a.0, a.1, b.0, b.1) / 1000.0), "166.2742");
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(0.00005), "0.0000");
        assert_eq!(format_distance(1.23456), "1.2346");
    }

    #[test]
    fn positions_outside_the_mercator_range_do_not_encode() {
        assert_eq!(score(0.0, 85.06), None);
        assert_eq!(score(180.1, 0.0), None);
        assert!(score(-180.0, LATITUDE_MIN).is_some());
    }

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [(0u32, 0u32), (1, 0), (0, 1), (0x3ff_ffff, 0x155_5555), (u32::MAX, 7)] {
            let separated = deinterleave(interleave(x, y));
            assert_eq!((separated as u32, (separated >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn a_small_radius_scans_the_centre_cell_and_its_neighbours() {
        let cells = search_cells(PALERMO, GeoShape::Radius(200.0), 1000.0);
        let center = cells[0].expect("the centre cell");
        assert!(center.step < STEP_MAX);
        let (min, max) = center.scores();
        assert!(min < max);
        // Every neighbour differs from the centre.
        assert!(cells[1..].iter().flatten().all(|cell| *cell != center));
    }

    #[test]
    fn out_of_range_scores_convert_as_on_x86_64() {
        assert_eq!(c_double_to_u64(3479099956230698.0), 3479099956230698);
        assert_eq!(c_double_to_u64(-5.0), (-5i64) as u64);
        assert_eq!(c_double_to_u64(1e20), 0);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_u64(1.5 * 9_223_372_036_854_775_808.0), 1 << 62 | 1 << 63);
    }

    #[test]
    fn units() {
        assert_eq!(unit(b"KM"), Some(1000.0));
        assert_eq!(unit(b"mi"), Some(1609.34));
        assert_eq!(unit(b"yd"), None);
    }
}
