//! The SVG chart of a summary: one panel per measure, scenarios along x,
//! one bar per server.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::Summary;

const WIDTH: u32 = 1500;
const HEIGHT: u32 = 1300;

fn color(server: &str) -> RGBColor {
    match server {
        "netloom" => RGBColor(230, 97, 1),
        // A lighter shade of netloom's: the same engine, the async front-end.
        "netloom-async" => RGBColor(253, 184, 99),
        // A darker one: the callback engine on io_uring.
        "netloom-uring" => RGBColor(166, 54, 3),
        "tokio" => RGBColor(59, 117, 175),
        "go" => RGBColor(0, 150, 136),
        // Neutral grey: the floor is a reference, not a framework.
        "floor" => RGBColor(150, 150, 150),
        _ => RGBColor(90, 90, 90),
    }
}

/// Two short lines naming a scenario under its bars.
fn label(scenario: &str) -> (String, String) {
    let (a, b) = match scenario {
        "echo-64B-100c" => ("echo 64 B", "100 conns"),
        "echo-4KiB-100c" => ("echo 4 KiB", "100 conns"),
        "echo-64B-1000c" => ("echo 64 B", "1,000 conns"),
        "echo-4KiB-1000c" => ("echo 4 KiB", "1,000 conns"),
        "http-p16-256c" => ("HTTP p16", "256 conns"),
        "resp-get-p16-50c" => ("RESP GET p16", "50 conns"),
        "resp-set-p16-50c" => ("RESP SET p16", "50 conns"),
        other => (other, ""),
    };
    (a.to_string(), b.to_string())
}

/// `152340.0` -> `152k`.
fn compact(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// One panel of grouped bars.
struct Panel<'a> {
    title: &'a str,
    y_desc: &'a str,
    /// Two lines naming each group of bars.
    groups: Vec<(String, String)>,
    /// (group, series, value, text above the bar)
    bars: Vec<(usize, usize, f64, String)>,
    series: &'a [String],
    /// Draw log10 of the values (for latencies spanning decades).
    log: bool,
}

fn draw_panel(area: &DrawingArea<SVGBackend, Shift>, p: &Panel) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let values: Vec<f64> = p
        .bars
        .iter()
        .map(|b| b.2)
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let transform = |v: f64| if p.log { v.log10() } else { v };
    let max = values
        .iter()
        .copied()
        .map(transform)
        .fold(f64::MIN, f64::max);
    let min = values
        .iter()
        .copied()
        .map(transform)
        .fold(f64::MAX, f64::min);
    let (y0, y1) = if p.log {
        (min.floor().min(max - 1.0), max.ceil() + 0.3)
    } else {
        (0.0, max * 1.18)
    };
    let n = p.groups.len();
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, ("sans-serif", 19))
        .margin(12)
        .margin_bottom(44)
        .x_label_area_size(4)
        .y_label_area_size(62)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, y0..y1)
        .map_err(|e| err(&e))?;
    let log = p.log;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(p.y_desc)
        .y_label_formatter(&|y| {
            if log {
                compact(10f64.powf(*y))
            } else {
                compact(*y)
            }
        })
        // Evenly spaced light lines would lie on a log axis.
        .max_light_lines(if log { 0 } else { 4 })
        .y_labels(if log {
            (y1 - y0).ceil() as usize + 1
        } else {
            8
        })
        .draw()
        .map_err(|e| err(&e))?;
    let k = p.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (g, s, v, text) in &p.bars {
        if !v.is_finite() || *v <= 0.0 {
            continue;
        }
        let x0 = *g as f64 - 0.4 + *s as f64 * width;
        let top = transform(*v);
        let fill = color(&p.series[*s]);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0 + width * 0.06, y0), (x0 + width * 0.94, top)],
                fill.filled(),
            )))
            .map_err(|e| err(&e))?;
        let (px, py) = chart.backend_coord(&(x0 + width / 2.0, top));
        let style = TextStyle::from(("sans-serif", 11).into_font())
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        area.draw(&Text::new(
            text.clone(),
            (px - area_x(area), py - area_y(area) - 2),
            style,
        ))
        .map_err(|e| err(&e))?;
    }
    for (g, (line1, line2)) in p.groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64, y0));
        let style =
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let (x, y) = (px - area_x(area), py - area_y(area));
        area.draw(&Text::new(line1.as_str(), (x, y + 6), style.clone()))
            .map_err(|e| err(&e))?;
        area.draw(&Text::new(line2.as_str(), (x, y + 22), style))
            .map_err(|e| err(&e))?;
    }
    Ok(())
}

fn area_x(a: &DrawingArea<SVGBackend, Shift>) -> i32 {
    a.get_base_pixel().0
}

fn area_y(a: &DrawingArea<SVGBackend, Shift>) -> i32 {
    a.get_base_pixel().1
}

/// Writes the chart of `s` to `path`.
pub fn draw(s: &Summary, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (head, body) = root.split_vertically(56);
    let m = &s.machine;
    head.draw(&Text::new(
        "netloom vs peers, one core each: server (1 loop / 1 worker) on one, load generator on the other",
        (14, 8),
        ("sans-serif", 22).into_font(),
    ))
    .map_err(|e| err(&e))?;
    head.draw(&Text::new(
        format!(
            "{} cores ({}), Linux {}, {}; medians of {} runs of {} s; netloom {}{}",
            m["nproc"],
            m["cpu"].as_str().unwrap_or("?"),
            m["kernel"].as_str().unwrap_or("?"),
            m["date"].as_str().unwrap_or("?"),
            m["runs"],
            m["duration_s"],
            m["commit"].as_str().unwrap_or("?"),
            if m["runs"].as_u64().unwrap_or(0) < 3 || m["duration_s"].as_f64().unwrap_or(0.0) < 3.0
            {
                " (a smoke test: not for comparison)"
            } else {
                ""
            },
        ),
        (14, 34),
        ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
    ))
    .map_err(|e| err(&e))?;
    let panels = body.split_evenly((3, 2));
    let servers = &s.servers;
    let groups: Vec<(String, String)> = s.scenarios.iter().map(|sc| label(sc)).collect();
    let index = |sc: &str| s.scenarios.iter().position(|g| g == sc);
    let series = |sv: &str| servers.iter().position(|x| x == sv);
    let bars = |value: &dyn Fn(&crate::report::Row) -> Option<(f64, String)>| {
        s.rows
            .iter()
            .filter_map(|r| {
                let (v, t) = value(r)?;
                Some((index(&r.scenario)?, series(&r.server)?, v, t))
            })
            .collect::<Vec<_>>()
    };
    let base = |sc: &str| {
        s.rows
            .iter()
            .find(|r| r.scenario == sc && r.server == "tokio")
            .map(|r| r.rate)
    };
    let panel_list = [
        Panel {
            title: "throughput relative to tokio (labels: msgs/s)",
            y_desc: "× tokio",
            groups: groups.clone(),
            bars: bars(&|r| Some((r.rate / base(&r.scenario)?, compact(r.rate)))),
            series: servers,
            log: false,
        },
        Panel {
            title: "server CPU time per message (user + sys), µs",
            y_desc: "µs per msg",
            groups: groups.clone(),
            bars: bars(&|r| Some((r.cpu_us_per_op, format!("{:.2}", r.cpu_us_per_op)))),
            series: servers,
            log: false,
        },
        Panel {
            title: "p99 latency, ms (log scale)",
            y_desc: "ms",
            groups: groups.clone(),
            bars: bars(&|r| Some((r.p99_us / 1000.0, compact(r.p99_us / 1000.0)))),
            series: servers,
            log: true,
        },
        Panel {
            title: "server peak RSS, MiB",
            y_desc: "MiB",
            groups: groups.clone(),
            bars: bars(&|r| Some((r.hwm_kib / 1024.0, format!("{:.1}", r.hwm_kib / 1024.0)))),
            series: servers,
            log: false,
        },
    ];
    for (panel, area) in panel_list.iter().zip(panels.iter()) {
        draw_panel(area, panel)?;
    }
    // Idle memory: one group per step plus the slope, one bar per server.
    if let Some(first) = s.idle.first() {
        let mut groups: Vec<(String, String)> = first
            .steps
            .iter()
            .map(|st| {
                (
                    crate::report::thousands(st.0 as f64),
                    "connections".to_string(),
                )
            })
            .collect();
        groups.push(("slope".into(), "between the steps".into()));
        let mut bars = Vec::new();
        for i in &s.idle {
            let Some(sv) = series(&i.server) else {
                continue;
            };
            for (g, st) in i.steps.iter().enumerate() {
                bars.push((g, sv, st.2, compact(st.2)));
            }
            bars.push((i.steps.len(), sv, i.slope, compact(i.slope)));
        }
        let steps: Vec<String> = first
            .steps
            .iter()
            .map(|st| crate::report::thousands(st.0 as f64))
            .collect();
        let title = format!(
            "memory per idle connection, bytes (log scale): at {} conns, and the slope",
            steps.join(" and ")
        );
        let panel = Panel {
            title: &title,
            y_desc: "bytes / conn",
            groups,
            bars,
            series: servers,
            log: true,
        };
        draw_panel(&panels[4], &panel)?;
    }
    // Legend.
    let legend = &panels[5];
    for (i, sv) in servers.iter().enumerate() {
        let y = 40 + i as i32 * 34;
        legend
            .draw(&Rectangle::new([(40, y), (64, y + 20)], color(sv).filled()))
            .map_err(|e| err(&e))?;
        legend
            .draw(&Text::new(
                sv.clone(),
                (74, y + 1),
                ("sans-serif", 18).into_font(),
            ))
            .map_err(|e| err(&e))?;
    }
    let notes = [
        "echo: 1 message in flight per connection, every byte verified",
        "HTTP: GET /plaintext, 16 pipelined per connection, 200 + body checked",
        "RESP: GET / SET, 16 pipelined per connection, replies checked",
        "floor: one mio thread that only reads and writes back (echo only)",
        "lower is better except for throughput; the table is the .md file beside this chart",
    ];
    for (i, n) in notes.iter().enumerate() {
        let y = 60 + servers.len() as i32 * 34 + i as i32 * 24;
        legend
            .draw(&Text::new(
                *n,
                (40, y),
                ("sans-serif", 14).into_font().color(&RGBColor(70, 70, 70)),
            ))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
