//! CSV exports with a header row somewhere near the top: finding the row by its columns
//! (accepting preamble rows before it and extra columns in any order), then reading the data
//! records by column, with their line numbers for errors.

use csv::{ByteRecord, ReaderBuilder};

use super::{Format, at, momo, mpesa_csv};
use crate::ParseError;

/// How many rows before the header a file may have.
const HEADER_ROWS_MAX: usize = 32;

/// A column a format reads: the names it goes by (normalised by [`normalize`]) and whether a
/// header row without it is not this format's.
#[derive(Debug)]
pub(super) struct Column {
    pub names: &'static [&'static str],
    pub required: bool,
}

/// A header cell reduced to what tells columns apart: lower-case letters and digits only
/// (`"Receipt No."` is `receiptno`, `"A/C No."` is `acno`).
pub(super) fn normalize(cell: &str) -> String {
    cell.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Where each of `columns` is in `header`, or `None` when a required one is missing.
fn locate(header: &[String], columns: &[Column]) -> Option<Vec<Option<usize>>> {
    let found: Vec<Option<usize>> = columns
        .iter()
        .map(|column| header.iter().position(|cell| column.names.contains(&cell.as_str())))
        .collect();
    columns.iter().zip(&found).all(|(column, at)| !column.required || at.is_some()).then_some(found)
}

/// A CSV file positioned after its header row.
pub(super) struct Table<'a> {
    reader: csv::Reader<&'a [u8]>,
    /// Where each requested column is.
    columns: Vec<Option<usize>>,
    /// The rows before the header, as text.
    pub preamble: Vec<Vec<String>>,
    record: ByteRecord,
}

impl std::fmt::Debug for Table<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("columns", &self.columns).finish_non_exhaustive()
    }
}

fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes)
}

fn cells(record: &ByteRecord) -> Vec<String> {
    record.iter().map(|cell| String::from_utf8_lossy(cell).into_owned()).collect()
}

impl<'a> Table<'a> {
    /// Finds the header row with `columns` within the first rows of `bytes`.
    ///
    /// # Errors
    ///
    /// When no such row is found, naming the `format`'s required columns.
    pub fn open(bytes: &'a [u8], columns: &[Column], format: Format) -> Result<Self, ParseError> {
        let mut reader = reader(bytes);
        let mut record = ByteRecord::new();
        let mut preamble = Vec::new();
        for _ in 0..HEADER_ROWS_MAX {
            let line = reader.position().line();
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => return Err(at(format_args!("line {line}"), error)),
            }
            let row = cells(&record);
            let header: Vec<String> = row.iter().map(|cell| normalize(cell)).collect();
            if let Some(found) = locate(&header, columns) {
                return Ok(Self { reader, columns: found, preamble, record });
            }
            preamble.push(row);
        }
        let wanted: Vec<&str> =
            columns.iter().filter(|column| column.required).map(|column| column.names[0]).collect();
        Err(ParseError::Unexpected(format!(
            "no {format} header row with the columns {} in the first {HEADER_ROWS_MAX} rows",
            wanted.join(", ")
        )))
    }

    /// Reads the next data record, skipping blank ones; `false` at the end. Its cells are then
    /// read with [`Table::get`] and [`Table::line`].
    ///
    /// # Errors
    ///
    /// A record the CSV reader cannot read (an unterminated quote), with its line.
    pub fn next(&mut self) -> Result<bool, ParseError> {
        loop {
            let line = self.reader.position().line();
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(error) => return Err(at(format_args!("line {line}"), error)),
            }
            if self.record.iter().any(|cell| !cell.iter().all(u8::is_ascii_whitespace)) {
                return Ok(true);
            }
        }
    }

    /// The line the current record starts on.
    pub fn line(&self) -> u64 {
        self.record.position().map_or(0, csv::Position::line)
    }

    /// The trimmed text of the current record's cell for column `index` (of the columns given
    /// to [`Table::open`]); empty when the column or the cell is missing.
    ///
    /// # Errors
    ///
    /// A cell that is not UTF-8, with its line.
    pub fn get(&self, index: usize) -> Result<&str, ParseError> {
        let Some(cell) = self.columns[index].and_then(|at| self.record.get(at)) else {
            return Ok("");
        };
        std::str::from_utf8(cell)
            .map(str::trim)
            .map_err(|_| at(format_args!("line {}", self.line()), "a cell that is not UTF-8"))
    }

    /// Whether the file has column `index`.
    pub fn has(&self, index: usize) -> bool {
        self.columns[index].is_some()
    }
}

/// The CSV format whose header row is among the first rows of `head`, if any.
pub(super) fn detect(head: &[u8]) -> Option<Format> {
    let mut reader = reader(head);
    let mut record = ByteRecord::new();
    for _ in 0..HEADER_ROWS_MAX {
        if !matches!(reader.read_byte_record(&mut record), Ok(true)) {
            return None;
        }
        let header: Vec<String> =
            record.iter().map(|c| normalize(&String::from_utf8_lossy(c))).collect();
        if locate(&header, mpesa_csv::COLUMNS).is_some() {
            return Some(Format::MpesaCsv);
        }
        if locate(&header, momo::COLUMNS).is_some() && momo::looks_like_report(&header) {
            return Some(Format::MomoReport);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn header_cells_normalise() {
        assert_eq!(normalize(" Receipt No. "), "receiptno");
        assert_eq!(normalize("A/C No."), "acno");
        assert_eq!(normalize("External Transaction Id"), "externaltransactionid");
    }
}
