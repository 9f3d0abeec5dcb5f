//! A line chart as inline SVG, drawn on the server: a balance at evenly spaced times.
//!
//! Positions are computed in exact decimals (no floating point near an amount) and rounded to
//! a tenth of a pixel; every point carries its exact balance and time, shown as its tooltip.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// How many points a balance chart has: the balance at the start, the end, and evenly
/// between.
pub const CHART_POINTS: usize = 13;

/// The drawing's size and the plot's margins inside it, in pixels.
const WIDTH: u32 = 760;
const HEIGHT: u32 = 240;
const LEFT: u32 = 100;
const RIGHT: u32 = 20;
const TOP: u32 = 16;
const BOTTOM: u32 = 36;

/// One point of a chart, ready for the template.
#[derive(Clone, Debug)]
pub struct Point {
    pub x: String,
    pub y: String,
    /// The time, as RFC 3339.
    pub at: String,
    /// The exact balance.
    pub balance: String,
    /// The tooltip: time and balance.
    pub label: String,
}

/// A line chart, ready for the template (`ui/chart.html`).
#[derive(Clone, Debug)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    /// The plot's edges, in pixels: `left` and `right` (x), `top` and `bottom` (y).
    pub left: u32,
    pub right: u32,
    pub top: u32,
    pub bottom: u32,
    /// The points, in time order.
    pub points: Vec<Point>,
    /// The `points` attribute of the polyline.
    pub line: String,
    /// The largest and smallest balance, exact, labelling the top and bottom of the plot.
    pub high: String,
    pub low: String,
    /// The first and last time, labelling the ends of the time axis.
    pub start: String,
    pub end: String,
    /// The y of the zero line, when zero is within the plotted range and not at its edge.
    pub zero: Option<String>,
}

/// The chart of `samples` (times in order, each with a balance) in `currency`.
pub fn line_chart(samples: &[(DateTime<Utc>, Decimal)], currency: &str) -> Chart {
    let high = samples.iter().map(|(_, value)| *value).max().unwrap_or_default();
    let low = samples.iter().map(|(_, value)| *value).min().unwrap_or_default();
    let plot_width = Decimal::from(WIDTH - LEFT - RIGHT);
    let plot_height = Decimal::from(HEIGHT - TOP - BOTTOM);
    let steps = Decimal::from(samples.len().saturating_sub(1).max(1));
    let y_of = |value: Decimal| {
        let range = high - low;
        let offset = if range.is_zero() {
            plot_height / Decimal::TWO
        } else {
            (high - value) * plot_height / range
        };
        (Decimal::from(TOP) + offset).round_dp(1)
    };
    let points: Vec<Point> = samples
        .iter()
        .enumerate()
        .map(|(index, (at, value))| {
            let x = (Decimal::from(LEFT) + plot_width * Decimal::from(index) / steps).round_dp(1);
            let time = at.format("%Y-%m-%d %H:%M:%S UTC");
            Point {
                x: x.to_string(),
                y: y_of(*value).to_string(),
                at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                balance: value.to_string(),
                label: format!("{time}: {value} {currency}"),
            }
        })
        .collect();
    let line = points.iter().map(|point| format!("{},{}", point.x, point.y)).collect::<Vec<_>>();
    let zero =
        (low < Decimal::ZERO && high > Decimal::ZERO).then(|| y_of(Decimal::ZERO).to_string());
    let date = |at: Option<&(DateTime<Utc>, Decimal)>| {
        at.map(|(at, _)| at.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
    };
    Chart {
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right: WIDTH - RIGHT,
        top: TOP,
        bottom: HEIGHT - BOTTOM,
        points,
        line: line.join(" "),
        high: format!("{high} {currency}"),
        low: format!("{low} {currency}"),
        start: date(samples.first()),
        end: date(samples.last()),
        zero,
    }
}

/// `count` times from `from` to `to`, evenly spaced (to the millisecond), both ends included.
pub fn sample_times(from: DateTime<Utc>, to: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let span = (to - from).num_milliseconds();
    let steps = i64::try_from(count.saturating_sub(1).max(1)).unwrap_or(1);
    (0..count)
        .map(|index| {
            let index = i64::try_from(index).unwrap_or(steps);
            // i128: a span of centuries in milliseconds times the index fits with room to spare.
            let offset = i128::from(span) * i128::from(index) / i128::from(steps);
            from + chrono::Duration::milliseconds(i64::try_from(offset).unwrap_or(span))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn points_span_the_plot_and_keep_exact_balances() {
        let samples: Vec<_> = [("0.00", 0), ("10.00", 60), ("30.00", 120), ("-5.50", 180)]
            .iter()
            .map(|(value, seconds)| (at(*seconds), value.parse::<Decimal>().unwrap()))
            .collect();
        let chart = line_chart(&samples, "KES");
        assert_eq!(chart.points.len(), 4);
        assert_eq!(chart.points[0].x, LEFT.to_string());
        assert_eq!(chart.points[3].x, (WIDTH - RIGHT).to_string());
        // The highest balance is at the top, the lowest at the bottom.
        assert_eq!(chart.points[2].y, TOP.to_string());
        assert_eq!(chart.points[3].y, (HEIGHT - BOTTOM).to_string());
        assert_eq!(chart.points[3].balance, "-5.50");
        assert!(chart.points[1].label.ends_with(": 10.00 KES"), "{}", chart.points[1].label);
        assert_eq!((chart.high.as_str(), chart.low.as_str()), ("30.00 KES", "-5.50 KES"));
        assert!(chart.zero.is_some());
        assert_eq!(chart.line.split(' ').count(), 4);
    }

    #[test]
    fn a_flat_balance_is_drawn_in_the_middle() {
        let samples = vec![(at(0), Decimal::from(7)), (at(10), Decimal::from(7))];
        let chart = line_chart(&samples, "KES");
        let middle = Decimal::from(TOP) + Decimal::from(HEIGHT - TOP - BOTTOM) / Decimal::TWO;
        assert!(chart.points.iter().all(|point| point.y == middle.round_dp(1).to_string()));
        assert!(chart.zero.is_none());
    }

    #[test]
    fn sample_times_include_both_ends_evenly() {
        let times = sample_times(at(0), at(120), 5);
        assert_eq!(times, vec![at(0), at(30), at(60), at(90), at(120)]);
        assert_eq!(sample_times(at(0), at(0), 3), vec![at(0); 3]);
        assert_eq!(sample_times(at(0), at(10), CHART_POINTS).len(), CHART_POINTS);
    }
}
