//! An account statement as a PDF: one table on A4 pages — a header with the account, the period
//! and the opening and closing balances, then a row per posted entry (date, transfer, code,
//! debit, credit, running balance), page after page, each numbered. No HTTP: the statement
//! endpoint calls it with lines the ledger read.
//!
//! Text is set in the standard Courier and Helvetica fonts (every reader has them, so nothing is
//! embedded); Courier's fixed width is what right-aligns the amounts. Amounts are the ledger's
//! exact decimals written as text; coordinates are the only numbers with a fraction here.

use chrono::{DateTime, Utc};
use hazina_ledger::rules::Side;
use hazina_ledger::store::{StatementExport, StatementLine};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

/// Most lines a PDF statement holds (about 300 pages); longer statements are for CSV.
pub const STATEMENT_LINES_MAX: i64 = 20_000;

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 36.0;
/// The table's font size, and the width of one Courier character at that size (0.6 em).
const TABLE_SIZE: f32 = 7.0;
const CHAR_WIDTH: f32 = 4.2;
const LEADING: f32 = 10.0;
/// Rows on the first page (below the header) and on the others: the last row stays above
/// 50 pt, clear of the page number.
const FIRST_PAGE_ROWS: usize = 66;
const PAGE_ROWS: usize = 72;

/// The columns: their left edge, or right edge for amounts, and widest text in characters.
const DATE_X: f32 = MARGIN;
const TRANSFER_X: f32 = 121.0;
const CODE_X: f32 = 277.0;
const CODE_CHARS: usize = 16;
const DEBIT_END: f32 = 412.0;
const CREDIT_END: f32 = 480.0;
const BALANCE_END: f32 = 556.0;

const HELVETICA: Name<'static> = Name(b"F1");
const HELVETICA_BOLD: Name<'static> = Name(b"F2");
const COURIER: Name<'static> = Name(b"F3");

/// The statement as a PDF document. `lines` are the export's lines; those that moved only
/// pending sums (reservations) are left out, since the running balance shown is the posted one.
pub fn statement(
    export: &StatementExport,
    lines: &[StatementLine],
    generated_at: DateTime<Utc>,
) -> Vec<u8> {
    let posted: Vec<&StatementLine> =
        lines.iter().filter(|line| line.amount_posted.is_positive()).collect();
    let mut pages: Vec<&[&StatementLine]> = Vec::new();
    let (first, mut rest) = posted.split_at(posted.len().min(FIRST_PAGE_ROWS));
    pages.push(first);
    while !rest.is_empty() {
        let (page, after) = rest.split_at(rest.len().min(PAGE_ROWS));
        pages.push(page);
        rest = after;
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let fonts = [(HELVETICA, Ref::new(3)), (HELVETICA_BOLD, Ref::new(4)), (COURIER, Ref::new(5))];
    // Each page takes two ids: the page and its content stream.
    let page_ids: Vec<(Ref, Ref)> = (0..pages.len())
        .map(|index| {
            let base = i32::try_from(6 + 2 * index).unwrap_or(i32::MAX);
            (Ref::new(base), Ref::new(base.saturating_add(1)))
        })
        .collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(i32::try_from(pages.len()).unwrap_or(i32::MAX));
    for ((_, id), base) in fonts.iter().zip([&b"Helvetica"[..], b"Helvetica-Bold", b"Courier"]) {
        pdf.type1_font(*id).base_font(Name(base)).encoding_predefined(Name(b"WinAnsiEncoding"));
    }

    let title = format!("Statement of account {}", export.account.id.0);
    for (number, (rows, (page_id, content_id))) in pages.iter().zip(&page_ids).enumerate() {
        let mut content = Content::new();
        let mut top = PAGE_HEIGHT - MARGIN;
        if number == 0 {
            top = header(&mut content, export, &title, posted.len(), generated_at);
        } else {
            text(&mut content, HELVETICA, 9.0, MARGIN, top, &title);
            top -= 16.0;
        }
        // The column heads and a rule under them.
        text(&mut content, HELVETICA_BOLD, TABLE_SIZE, DATE_X, top, "Recorded (UTC)");
        text(&mut content, HELVETICA_BOLD, TABLE_SIZE, TRANSFER_X, top, "Transfer");
        text(&mut content, HELVETICA_BOLD, TABLE_SIZE, CODE_X, top, "Code");
        for (end, head) in [(DEBIT_END, "Debit"), (CREDIT_END, "Credit"), (BALANCE_END, "Balance")]
        {
            // Helvetica-Bold's widths vary: a short head is set a little inside the edge.
            text(&mut content, HELVETICA_BOLD, TABLE_SIZE, end - 26.0, top, head);
        }
        content.set_line_width(0.5);
        content.move_to(MARGIN, top - 3.0).line_to(PAGE_WIDTH - MARGIN, top - 3.0).stroke();
        top -= LEADING + 2.0;
        for line in *rows {
            let amount = line.amount_posted.amount().to_string();
            let (debit, credit) = match line.side {
                Side::Debit => (amount, String::new()),
                Side::Credit => (String::new(), amount),
            };
            text(&mut content, COURIER, TABLE_SIZE, DATE_X, top, &stamp(line.created_at));
            text(
                &mut content,
                COURIER,
                TABLE_SIZE,
                TRANSFER_X,
                top,
                &line.transfer_id.0.to_string(),
            );
            text(&mut content, COURIER, TABLE_SIZE, CODE_X, top, &clip(&line.code, CODE_CHARS));
            right(&mut content, DEBIT_END, top, &debit);
            right(&mut content, CREDIT_END, top, &credit);
            right(&mut content, BALANCE_END, top, &line.balance.posted.amount().to_string());
            top -= LEADING;
        }
        if posted.is_empty() {
            text(&mut content, HELVETICA, 9.0, MARGIN, top, "No posted entries in the period.");
        }
        let footer = format!("Page {} of {}", number + 1, pages.len());
        text(&mut content, HELVETICA, 8.0, PAGE_WIDTH - MARGIN - 50.0, MARGIN - 12.0, &footer);

        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
        page.parent(tree);
        page.contents(*content_id);
        let mut resources = page.resources();
        let mut font_map = resources.fonts();
        for (name, id) in fonts {
            font_map.pair(name, id);
        }
        drop(font_map);
        drop(resources);
        drop(page);
        pdf.stream(*content_id, &content.finish());
    }
    pdf.finish()
}

/// The first page's header: the title, the account, the period, the opening and closing
/// balances; returns where the table starts.
fn header(
    content: &mut Content,
    export: &StatementExport,
    title: &str,
    posted: usize,
    generated_at: DateTime<Utc>,
) -> f32 {
    let account = &export.account;
    let mut top = PAGE_HEIGHT - MARGIN;
    text(content, HELVETICA_BOLD, 13.0, MARGIN, top, title);
    top -= 18.0;
    let period =
        |time: Option<DateTime<Utc>>, none: &str| time.map_or_else(|| none.to_owned(), stamp);
    let lines = [
        format!(
            "Kind: {}   Currency: {}   Name: {}",
            account.kind.as_str(),
            account.currency.code(),
            account.name.as_deref().unwrap_or("-")
        ),
        format!(
            "Period (recorded): {} to {}",
            period(export.from, "the first entry"),
            period(export.to, "the last entry")
        ),
        format!("Opening balance: {}", export.opening.posted.amount()),
        format!("Closing balance: {}", export.closing.posted.amount()),
        format!(
            "Entries {} to {} ({posted} lines posted)   Generated {}",
            export.after_version + 1,
            export.until_version,
            stamp(generated_at)
        ),
    ];
    for line in lines {
        text(content, HELVETICA, 9.0, MARGIN, top, &line);
        top -= 12.0;
    }
    top - 6.0
}

/// A time as the statement shows it: `2026-12-07 20:07:01`, in UTC.
fn stamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// At most `chars` characters of `text`, the last one `~` when some were cut.
fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(chars.saturating_sub(1)).collect();
    clipped.push('~');
    clipped
}

/// One run of text at `(x, y)`. Characters outside printable ASCII become `?`: the standard
/// fonts carry `WinAnsiEncoding`'s glyphs only, and a name in another script must not break the page.
fn text(content: &mut Content, font: Name<'_>, size: f32, x: f32, y: f32, text: &str) {
    let bytes: Vec<u8> = text
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c as u8 } else { b'?' })
        .collect();
    content.begin_text();
    content.set_font(font, size);
    content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
    content.show(Str(&bytes));
    content.end_text();
}

/// Courier text whose right edge is at `end`.
fn right(content: &mut Content, end: f32, y: f32, value: &str) {
    let chars = u16::try_from(value.chars().count()).unwrap_or(u16::MAX);
    text(content, COURIER, TABLE_SIZE, end - f32::from(chars) * CHAR_WIDTH, y, value);
}
