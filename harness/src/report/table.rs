//! Tables that write themselves as Markdown (rounded, for reading) and as CSV (full precision,
//! for computing).
//!
//! A number is stored once, as an `f64`; the Markdown shows it with the table's chosen decimals
//! and the CSV writes Rust's shortest round-trip form, so no figure in a CSV has been rounded.
//! A missing value says why in Markdown (`n/a`, `not measured`, ...) and is empty in CSV.

use std::path::Path;

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A value and the decimals Markdown shows.
    Num(f64, usize),
    /// A value Markdown shows in scientific notation with this many significant digits.
    Sci(f64, usize),
    /// No value, with what Markdown shows instead.
    Missing(String),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn num(v: f64, decimals: usize) -> Cell {
        Cell::Num(v, decimals)
    }

    pub fn sci(v: f64, digits: usize) -> Cell {
        Cell::Sci(v, digits)
    }

    /// `Num` when `v` is `Some` and finite, else `Missing(why)`.
    pub fn opt(v: Option<f64>, decimals: usize, why: &str) -> Cell {
        match v {
            Some(v) if v.is_finite() => Cell::Num(v, decimals),
            Some(v) if v.is_infinite() => Cell::Text(if v > 0.0 { "inf".into() } else { "-inf".into() }),
            _ => Cell::Missing(why.into()),
        }
    }

    fn markdown(&self) -> String {
        let s = match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(v, d) => format!("{v:.d$}", d = *d),
            Cell::Sci(v, d) => format!("{v:.d$e}", d = d.saturating_sub(1)),
            Cell::Missing(why) => why.clone(),
        };
        s.replace('|', "\\|").replace('\n', " ")
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(v, _) | Cell::Sci(v, _) => format!("{v}"),
            Cell::Missing(_) => String::new(),
        }
    }
}

/// A table with named columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    /// Adds a row; short rows are padded with empty cells, long ones cut to the header's width.
    pub fn push(&mut self, mut row: Vec<Cell>) {
        row.resize(self.headers.len(), Cell::Text(String::new()));
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// GitHub-flavoured Markdown; numeric columns right-aligned.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
        s.push_str(&line(self.headers.iter().map(|h| Cell::Text(h.clone()).markdown()).collect()));
        let numeric = |c: usize| {
            self.rows.iter().any(|r| matches!(r[c], Cell::Num(..) | Cell::Sci(..)))
                && self
                    .rows
                    .iter()
                    .all(|r| !matches!(r[c], Cell::Text(ref t) if !t.is_empty() && t != "inf" && t != "-inf"))
        };
        let seps: Vec<String> =
            (0..self.headers.len()).map(|c| if numeric(c) { "---:".to_string() } else { "---".to_string() }).collect();
        s.push_str(&line(seps));
        for r in &self.rows {
            s.push_str(&line(r.iter().map(|c| c.markdown()).collect()));
        }
        s
    }

    /// CSV with a header line, full-precision numbers, empty missing values.
    pub fn to_csv(&self) -> Result<String, String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers).map_err(|e| e.to_string())?;
        for r in &self.rows {
            w.write_record(r.iter().map(|c| c.csv())).map_err(|e| e.to_string())?;
        }
        let bytes = w.into_inner().map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }

    pub fn write_csv(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.to_csv()?).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["op", "Gelem/s", "note", "mse"]);
        t.push(vec![Cell::text("quantize"), Cell::num(1.23456, 2), Cell::text("a|b"), Cell::sci(0.000123456, 3)]);
        t.push(vec![Cell::text("min, max"), Cell::opt(None, 2, "not measured")]);
        t.push(vec![
            Cell::text("x"),
            Cell::opt(Some(f64::INFINITY), 1, "?"),
            Cell::text("line\nbreak"),
            Cell::sci(5e-9, 2),
            Cell::text("cut"),
        ]);
        t
    }

    #[test]
    fn markdown() {
        let md = sample().to_markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| op | Gelem/s | note | mse |");
        assert_eq!(lines[1], "| --- | ---: | --- | ---: |");
        assert_eq!(lines[2], "| quantize | 1.23 | a\\|b | 1.23e-4 |");
        assert_eq!(lines[3], "| min, max | not measured |  |  |");
        assert_eq!(lines[4], "| x | inf | line break | 5.0e-9 |");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn csv_keeps_full_precision_and_quotes() {
        let csv = sample().to_csv().unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "op,Gelem/s,note,mse");
        assert_eq!(lines[1], "quantize,1.23456,a|b,0.000123456");
        assert_eq!(lines[2], "\"min, max\",,,");
        assert_eq!(lines[3], "x,inf,\"line");
        // Round trip through the csv reader.
        let mut r = csv::Reader::from_reader(csv.as_bytes());
        let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(&recs[1][0], "min, max");
        assert_eq!(&recs[2][2], "line\nbreak");
        assert_eq!(recs[0][1].parse::<f64>().unwrap(), 1.23456);
    }
}
