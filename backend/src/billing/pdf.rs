//! Invoices as PDF, for people to download, file and forward: A4 pages of text in the standard
//! Helvetica fonts, so no font is embedded and every reader (and `pdftotext`) shows the same text.
//!
//! The standard fonts are used with WinAnsiEncoding (Windows-1252): one byte a character, so
//! every string goes through `win_ansi`, which shows `?` for what the encoding lacks. Widths
//! come from Helvetica's published metrics (`HELVETICA`, `HELVETICA_BOLD`), so
//! right-aligned amounts end exactly at their column's edge and long descriptions wrap inside
//! theirs.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use tessera_domain::billing::{date, money, Invoice, InvoiceLine};

/// A4, in points (1/72 inch).
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
/// The baseline of a page's first line.
const TOP: f32 = PAGE_HEIGHT - MARGIN;
/// The lowest baseline the body may use; below it is the footer.
const BOTTOM: f32 = MARGIN + 40.0;

/// Baseline to baseline, for body text and for the table's rows.
const LEADING: f32 = 15.0;
const ROW_LEADING: f32 = 12.0;
/// Space between two rows of the table, shared by the rule that separates them.
const ROW_GAP: f32 = 6.0;

/// The table's columns: descriptions wrap inside theirs; quantities and amounts end at theirs.
const DESCRIPTION_WIDTH: f32 = 215.0;
const PERIOD_X: f32 = LEFT + DESCRIPTION_WIDTH + 12.0;
const QTY_RIGHT: f32 = 455.0;
/// Where the details' values start, and the totals' labels.
const DETAIL_VALUE_X: f32 = LEFT + 100.0;
const TOTALS_X: f32 = 340.0;

const FOOTER: &str = "Questions about this invoice? Reply to the email it came with, or see Settings > Billing.";

/// The two faces used: Helvetica and Helvetica-Bold.
#[derive(Clone, Copy, Debug)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    const ALL: [Font; 2] = [Font::Regular, Font::Bold];

    /// The name the pages' resources give it.
    fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"Regular"),
            Font::Bold => Name(b"Bold"),
        }
    }

    /// One of the fourteen fonts every PDF reader has.
    fn base_font(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"Helvetica"),
            Font::Bold => Name(b"Helvetica-Bold"),
        }
    }

    /// Its advances for the WinAnsi codes 32..=255, in thousandths of the font size.
    fn widths(self) -> &'static [u16; 224] {
        match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        }
    }

    fn advance(self, code: u8) -> u16 {
        usize::from(code).checked_sub(32).and_then(|i| self.widths().get(i)).copied().unwrap_or(0)
    }
}

/// How a piece of text is drawn.
#[derive(Clone, Copy, Debug)]
struct Style {
    font: Font,
    size: f32,
    /// 0 is black, 1 white.
    gray: f32,
}

impl Style {
    /// How wide `text` is drawn, in points.
    fn width(self, text: &str) -> f32 {
        let units: u32 = win_ansi(text).into_iter().map(|code| u32::from(self.font.advance(code))).sum();
        units as f32 * self.size / 1000.0
    }
}

const TITLE: Style = Style { font: Font::Bold, size: 24.0, gray: 0.0 };
const STATUS: Style = Style { font: Font::Bold, size: 14.0, gray: 0.35 };
const BODY: Style = Style { font: Font::Regular, size: 10.0, gray: 0.0 };
const LABEL: Style = Style { font: Font::Regular, size: 10.0, gray: 0.4 };
const STRONG: Style = Style { font: Font::Bold, size: 10.0, gray: 0.0 };
const HEADER: Style = Style { font: Font::Bold, size: 9.0, gray: 0.4 };
const CELL: Style = Style { font: Font::Regular, size: 9.0, gray: 0.0 };
const NOTE: Style = Style { font: Font::Regular, size: 8.0, gray: 0.4 };
const SMALL: Style = Style { font: Font::Regular, size: 7.0, gray: 0.55 };

/// The invoice as a PDF: a heading, who it is from and to, one row per line (continued on more
/// pages as needed, the table's headers repeated), the totals, and a footer on each page.
/// `organization` is who it is billed to; `seller` is the deployment's name, who bills.
pub fn render(invoice: &Invoice, organization: &str, seller: &str) -> Vec<u8> {
    let mut layout = Layout::new();
    heading(&mut layout, invoice);
    parties(&mut layout, invoice, organization, seller);
    table(&mut layout, invoice);
    totals(&mut layout, invoice);
    let mut pages = layout.finish();
    let count = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        footer(page, &invoice.id, i + 1, count);
    }
    let title = match &invoice.number {
        Some(number) => format!("Invoice {number}"),
        None => "Invoice".to_owned(),
    };
    assemble(pages, &title, seller)
}

/// Pages being filled top to bottom: the full ones, the current one, and the baseline of the
/// current one's next line.
struct Layout {
    full: Vec<Content>,
    page: Content,
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout { full: Vec::new(), page: Content::new(), y: TOP }
    }

    /// Whether `height` more points fit above the bottom margin.
    fn fits(&self, height: f32) -> bool {
        self.y - height >= BOTTOM
    }

    fn new_page(&mut self) {
        let full = std::mem::replace(&mut self.page, Content::new());
        self.full.push(full);
        self.y = TOP;
    }

    fn finish(mut self) -> Vec<Content> {
        self.full.push(self.page);
        self.full
    }
}

/// "Invoice" and its status, then its number and dates.
fn heading(layout: &mut Layout, invoice: &Invoice) {
    let y = layout.y;
    text(&mut layout.page, TITLE, LEFT, y, "Invoice");
    text_right(&mut layout.page, STATUS, RIGHT, y, status(&invoice.status));
    layout.y -= 36.0;

    let mut details = vec![
        ("Invoice number", invoice.number.clone().unwrap_or_else(|| "Not yet assigned".to_owned())),
        ("Date of issue", date(invoice.created)),
        ("Billing period", format!("{} – {}", date(invoice.period_start), date(invoice.period_end))),
    ];
    if let Some(paid_at) = invoice.paid_at {
        details.push(("Paid on", date(paid_at)));
    }
    for (label, value) in details {
        text(&mut layout.page, LABEL, LEFT, layout.y, label);
        text(&mut layout.page, BODY, DETAIL_VALUE_X, layout.y, &value);
        layout.y -= LEADING;
    }
    layout.y -= LEADING;
}

/// Stripe's invoice statuses in the words the billing page uses.
fn status(status: &str) -> &str {
    match status {
        "paid" => "Paid",
        "open" => "Due",
        "draft" => "Draft",
        "void" => "Void",
        "uncollectible" => "Uncollectible",
        other => other,
    }
}

/// "From" and "Bill to", side by side.
fn parties(layout: &mut Layout, invoice: &Invoice, organization: &str, seller: &str) {
    let customer_name = invoice.customer_name.as_deref().filter(|name| *name != organization);
    let bill_to: Vec<&str> = [Some(organization), customer_name, invoice.customer_email.as_deref()].into_iter().flatten().collect();
    let half = (RIGHT - LEFT) / 2.0;
    let from = party(&mut layout.page, LEFT, layout.y, half - 12.0, "From", &[seller]);
    let to = party(&mut layout.page, LEFT + half, layout.y, half, "Bill to", &bill_to);
    layout.y -= (from.max(to) as f32 + 1.0) * LEADING;
}

/// A label and the lines under it, each wrapped to `width`; returns how many lines it took.
fn party(content: &mut Content, x: f32, y: f32, width: f32, label: &str, lines: &[&str]) -> usize {
    text(content, STRONG, x, y, label);
    let wrapped: Vec<String> = lines.iter().flat_map(|line| wrap(line, BODY, width)).collect();
    for (i, line) in wrapped.iter().enumerate() {
        text(content, BODY, x, y - (i + 1) as f32 * LEADING, line);
    }
    wrapped.len() + 1
}

/// The lines of the invoice, one row each, continued on new pages under repeated headers.
fn table(layout: &mut Layout, invoice: &Invoice) {
    table_header(layout);
    for line in &invoice.lines {
        let description = wrap(&describe(line), CELL, DESCRIPTION_WIDTH);
        let height = description.len() as f32 * ROW_LEADING;
        if !layout.fits(height) {
            layout.new_page();
            table_header(layout);
        }
        let y = layout.y;
        for (i, part) in description.iter().enumerate() {
            text(&mut layout.page, CELL, LEFT, y - i as f32 * ROW_LEADING, part);
        }
        text(&mut layout.page, CELL, PERIOD_X, y, &period(line.period_start, line.period_end));
        if let Some(quantity) = line.quantity {
            text_right(&mut layout.page, CELL, QTY_RIGHT, y, &quantity.to_string());
        }
        text_right(&mut layout.page, CELL, RIGHT, y, &money(line.amount, &invoice.currency));
        let last_baseline = y - height + ROW_LEADING;
        rule(&mut layout.page, last_baseline - ROW_GAP - 1.0, 0.85);
        layout.y -= height + ROW_GAP;
    }
    layout.y -= LEADING;
}

fn table_header(layout: &mut Layout) {
    let y = layout.y;
    text(&mut layout.page, HEADER, LEFT, y, "Description");
    text(&mut layout.page, HEADER, PERIOD_X, y, "Period");
    text_right(&mut layout.page, HEADER, QTY_RIGHT, y, "Qty");
    text_right(&mut layout.page, HEADER, RIGHT, y, "Amount");
    rule(&mut layout.page, y - ROW_GAP, 0.4);
    layout.y -= ROW_LEADING + ROW_GAP;
}

/// A line's description, saying when it is prorated unless Stripe's wording already does.
fn describe(line: &InvoiceLine) -> String {
    let says_so = ["Unused time", "Remaining time"].iter().any(|words| line.description.contains(words));
    if line.proration && !says_so {
        format!("{} (prorated)", line.description)
    } else {
        line.description.clone()
    }
}

/// "Dec 1 – Dec 31, 2026"; the year is written once when both ends share it, and a period of
/// a single moment (a one-off charge) is just its date.
fn period(start: i64, end: i64) -> String {
    let (from, to) = (date(start), date(end));
    if from == to {
        return to;
    }
    match (from.rsplit_once(", "), to.rsplit_once(", ")) {
        (Some((day, year)), Some((_, same))) if year == same => format!("{day} – {to}"),
        _ => format!("{from} – {to}"),
    }
}

/// Subtotal to amount due, amounts aligned at the right margin.
fn totals(layout: &mut Layout, invoice: &Invoice) {
    let mut rows = vec![("Subtotal", invoice.subtotal, BODY)];
    if invoice.tax != 0 {
        rows.push(("Tax", invoice.tax, BODY));
    }
    rows.extend([("Total", invoice.total, STRONG), ("Amount paid", invoice.amount_paid, BODY), ("Amount due", invoice.amount_remaining, STRONG)]);
    if !layout.fits(rows.len() as f32 * LEADING) {
        layout.new_page();
    }
    for (label, amount, style) in rows {
        text(&mut layout.page, style, TOTALS_X, layout.y, label);
        text_right(&mut layout.page, style, RIGHT, layout.y, &money(amount, &invoice.currency));
        layout.y -= LEADING;
    }
}

/// Where to ask, which invoice this is, and which page.
fn footer(page: &mut Content, invoice_id: &str, number: usize, count: usize) {
    text(page, NOTE, LEFT, MARGIN + 14.0, FOOTER);
    text(page, SMALL, LEFT, MARGIN, invoice_id);
    text_right(page, SMALL, RIGHT, MARGIN, &format!("Page {number} of {count}"));
}

/// Draws `line` with its baseline starting at (x, y).
fn text(content: &mut Content, style: Style, x: f32, y: f32, line: &str) {
    content.set_fill_gray(style.gray).begin_text().set_font(style.font.resource(), style.size).next_line(x, y).show(Str(&win_ansi(line))).end_text();
}

/// Draws `line` so that it ends at `right`.
fn text_right(content: &mut Content, style: Style, right: f32, y: f32, line: &str) {
    text(content, style, right - style.width(line), y, line);
}

/// A hairline across the text column.
fn rule(content: &mut Content, y: f32, gray: f32) {
    content.set_stroke_gray(gray).set_line_width(0.5).move_to(LEFT, y).line_to(RIGHT, y).stroke();
}

/// Splits `text` into lines no wider than `width`: between words, and inside a word only when
/// it is wider than a line by itself (an email address, a long identifier). At least one line.
fn wrap(text: &str, style: Style, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let joined = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
        if style.width(&joined) <= width {
            line = joined;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            if !line.is_empty() && style.width(&format!("{line}{c}")) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Writes the pages, the two fonts they share, and the document's title into a PDF file.
fn assemble(pages: Vec<Content>, title: &str, author: &str) -> Vec<u8> {
    let mut ids = Ref::new(1);
    let catalog = ids.bump();
    let tree = ids.bump();
    let info = ids.bump();
    let fonts = Font::ALL.map(|font| (font, ids.bump()));

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.document_info(info).title(TextStr(title)).author(TextStr(author));
    for (font, id) in fonts {
        // With its widths: the standard fonts' exemption is deprecated since PDF 1.5, and a reader
        // that substitutes another font for Helvetica then still spaces it as Helvetica.
        pdf.type1_font(id)
            .base_font(font.base_font())
            .encoding_predefined(Name(b"WinAnsiEncoding"))
            .first_char(32)
            .last_char(255)
            .widths(font.widths().iter().map(|&width| f32::from(width)));
    }
    let mut kids = Vec::with_capacity(pages.len());
    for content in pages {
        let (page_id, content_id) = (ids.bump(), ids.bump());
        kids.push(page_id);
        let mut page = pdf.page(page_id);
        page.parent(tree).media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT)).contents(content_id);
        page.resources().fonts().pairs(fonts.iter().map(|&(font, id)| (font.resource(), id)));
        page.finish();
        pdf.stream(content_id, &content.finish());
    }
    let count = i32::try_from(kids.len()).unwrap_or(i32::MAX);
    pdf.pages(tree).kids(kids).count(count);
    pdf.finish()
}

/// `text` in WinAnsiEncoding, the standard fonts' one byte a character: ASCII and Latin-1 as
/// they are, Windows-1252's typographic extras at 0x80..=0x9F, the minus sign as a hyphen, line
/// breaks and tabs as spaces, and `?` for anything else (CJK, arrows, emoji).
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars().map(win_ansi_code).collect()
}

fn win_ansi_code(c: char) -> u8 {
    match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(c).unwrap_or(b'?'),
        '\u{2212}' => b'-',
        '\t' | '\n' | '\r' => b' ',
        _ => WINDOWS_1252_EXTRAS.iter().find(|(extra, _)| *extra == c).map_or(b'?', |&(_, code)| code),
    }
}

/// Windows-1252's characters outside Latin-1 (0x81, 0x8D, 0x8F, 0x90 and 0x9D are unused).
const WINDOWS_1252_EXTRAS: [(char, u8); 27] = [
    ('\u{20AC}', 0x80), // €
    ('\u{201A}', 0x82), // ‚
    ('\u{0192}', 0x83), // ƒ
    ('\u{201E}', 0x84), // „
    ('\u{2026}', 0x85), // …
    ('\u{2020}', 0x86), // †
    ('\u{2021}', 0x87), // ‡
    ('\u{02C6}', 0x88), // ˆ
    ('\u{2030}', 0x89), // ‰
    ('\u{0160}', 0x8A), // Š
    ('\u{2039}', 0x8B), // ‹
    ('\u{0152}', 0x8C), // Œ
    ('\u{017D}', 0x8E), // Ž
    ('\u{2018}', 0x91), // ‘
    ('\u{2019}', 0x92), // ’
    ('\u{201C}', 0x93), // “
    ('\u{201D}', 0x94), // ”
    ('\u{2022}', 0x95), // •
    ('\u{2013}', 0x96), // –
    ('\u{2014}', 0x97), // —
    ('\u{02DC}', 0x98), // ˜
    ('\u{2122}', 0x99), // ™
    ('\u{0161}', 0x9A), // š
    ('\u{203A}', 0x9B), // ›
    ('\u{0153}', 0x9C), // œ
    ('\u{017E}', 0x9E), // ž
    ('\u{0178}', 0x9F), // Ÿ
];

/// Helvetica's advances (Adobe's AFM metrics) for the WinAnsi codes 32..=255, in thousandths of
/// the font size; 0 for codes the encoding leaves unused.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    // 32: space ! " # $ % & ' ( ) * + , - . /
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    // 48: 0-9 : ; < = > ?
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    // 64: @ A-O
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    // 80: P-Z [ \ ] ^ _
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    // 96: ` a-o
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    // 112: p-z { | } ~ (127 unused)
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    // 128: € ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    // 144: ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    // 160: nbsp ¡ ¢ £ ¤ ¥ ¦ § ¨ © ª « ¬ shy ® ¯
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    // 176: ° ± ² ³ ´ µ ¶ · ¸ ¹ º » ¼ ½ ¾ ¿
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    // 192: À-Ï
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    // 208: Ð-ß
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    // 224: à-ï
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    // 240: ð-ÿ
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

/// Helvetica-Bold's advances, as [`HELVETICA`].
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    // 32: space ! " # $ % & ' ( ) * + , - . /
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    // 48: 0-9 : ; < = > ?
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    // 64: @ A-O
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    // 80: P-Z [ \ ] ^ _
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    // 96: ` a-o
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    // 112: p-z { | } ~ (127 unused)
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    // 128: € ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    // 144: ‘ ’ “ ” • – — ˜ ™ š › œ ž Ÿ
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    // 160: nbsp ¡ ¢ £ ¤ ¥ ¦ § ¨ © ª « ¬ shy ® ¯
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    // 176: ° ± ² ³ ´ µ ¶ · ¸ ¹ º » ¼ ½ ¾ ¿
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    // 192: À-Ï
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    // 208: Ð-ß
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    // 224: à-ï
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    // 240: ð-ÿ
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

/// The PDF of invoice `id` as a mail attachment (a receipt), if Tessera has the invoice.
pub(crate) async fn attachment(conn: &mut sqlx::PgConnection, id: &str, organization: &str) -> crate::Result<Option<crate::email::Attachment>> {
    let found: Option<sqlx::types::Json<Invoice>> =
        sqlx::query_scalar("SELECT object FROM billing_invoices WHERE id = $1").bind(id).fetch_optional(conn).await?;
    Ok(found.map(|json| {
        let invoice = json.0;
        let pdf = render(&invoice, organization, invoice.issuer.as_deref().unwrap_or("Tessera"));
        let number = invoice.number.clone().unwrap_or(invoice.id.clone());
        crate::email::Attachment::new(format!("invoice-{number}.pdf"), "application/pdf", &pdf)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn invoice(lines: usize) -> Invoice {
        Invoice {
            id: "in_1Test".into(),
            number: Some("TESS-0001".into()),
            status: "paid".into(),
            currency: "usd".into(),
            created: T,
            period_start: T,
            period_end: T + 30 * DAY,
            subtotal: 2579,
            tax: 0,
            total: 2579,
            amount_due: 2579,
            amount_paid: 2579,
            amount_remaining: 0,
            customer_name: Some("Ada Lovelace".into()),
            customer_email: Some("ada@example.com".into()),
            issuer: None,
            billing_reason: Some("subscription_cycle".into()),
            attempt_count: 1,
            next_payment_attempt: None,
            paid_at: Some(T + 60),
            lines: (0..lines)
                .map(|i| InvoiceLine {
                    description: format!("Seat {i} on the Team plan"),
                    quantity: Some(1),
                    amount: if i == 0 { -321 } else { 2900 },
                    period_start: T,
                    period_end: T + 30 * DAY,
                    proration: i == 0,
                })
                .collect(),
        }
    }

    /// Pages in the page tree: `/Type /Page` but not `/Type /Pages`.
    fn page_count(pdf: &[u8]) -> usize {
        pdf.windows(12).filter(|w| w.starts_with(b"/Type /Page") && w[11] != b's').count()
    }

    fn contains(pdf: &[u8], needle: &[u8]) -> bool {
        pdf.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn an_invoice_is_a_complete_pdf_file() {
        let pdf = render(&invoice(3), "Acme", "Tessera");
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
        assert_eq!(page_count(&pdf), 1);
        for shown in [&b"(Invoice) Tj"[..], b"(Paid) Tj", b"(TESS-0001) Tj", b"(Bill to) Tj", b"(Amount due) Tj", b"(Page 1 of 1) Tj"] {
            assert!(contains(&pdf, shown), "{}", String::from_utf8_lossy(shown));
        }
        assert!(contains(&pdf, b"/BaseFont /Helvetica-Bold"));
        assert!(contains(&pdf, b"/Encoding /WinAnsiEncoding"));
        assert!(contains(&pdf, b"/LastChar 255"));
    }

    #[test]
    fn text_is_written_in_win_ansi() {
        assert_eq!(win_ansi("é"), [0xE9]);
        assert_eq!(win_ansi("€"), [0x80]);
        assert_eq!(win_ansi("−"), [b'-']);
        assert_eq!(win_ansi("漢"), [b'?']);
        assert_eq!(win_ansi("“Café” – •…"), [0x93, b'C', b'a', b'f', 0xE9, 0x94, b' ', 0x96, b' ', 0x95, 0x85]);
        assert_eq!(win_ansi("a\u{85}b\tc →"), *b"a?b c ?", "C1 controls are not Windows-1252's extras");
        // A negative amount reads "-$3.21"; an accented name is one byte a letter (a hex string).
        let pdf = render(&invoice(1), "Café Ltd", "Tessera");
        assert!(contains(&pdf, b"(-$3.21) Tj"));
        assert!(contains(&pdf, b"<436166E9204C7464> Tj"));
    }

    #[test]
    fn widths_are_helveticas() {
        // $ 2 9 . 0 0: 556 556 556 278 556 556.
        let units = 556.0 + 556.0 + 556.0 + 278.0 + 556.0 + 556.0;
        assert_eq!(CELL.width("$29.00"), units * CELL.size / 1000.0);
        assert_eq!(STRONG.width("Wi"), (944.0 + 278.0) * STRONG.size / 1000.0);
        assert_eq!(BODY.width("é€"), (556.0 + 556.0) * BODY.size / 1000.0);
        // Codes 127 and the unused ones of 128..=159 are the only zero widths.
        for table in [&HELVETICA, &HELVETICA_BOLD] {
            let zeros: Vec<usize> = table.iter().enumerate().filter(|(_, width)| **width == 0).map(|(i, _)| i + 32).collect();
            assert_eq!(zeros, [127, 129, 141, 143, 144, 157]);
        }
    }

    #[test]
    fn long_descriptions_wrap_inside_their_column() {
        let text = "Usage of the API beyond the plan's allowance, billed per thousand calls: https://example.com/a-very-long-unbroken-address";
        let lines = wrap(text, CELL, DESCRIPTION_WIDTH);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|line| CELL.width(line) <= DESCRIPTION_WIDTH), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""), "nothing lost");
        assert_eq!(wrap("", CELL, DESCRIPTION_WIDTH), [""]);
    }

    #[test]
    fn prorations_and_periods_read_as_people_write_them() {
        let line = |description: &str, proration| InvoiceLine {
            description: description.into(),
            quantity: None,
            amount: 100,
            period_start: T,
            period_end: T + DAY,
            proration,
        };
        assert_eq!(describe(&line("Team plan", true)), "Team plan (prorated)");
        assert_eq!(describe(&line("Unused time on Team plan", true)), "Unused time on Team plan");
        assert_eq!(describe(&line("Team plan", false)), "Team plan");
        assert_eq!(period(T, T + 30 * DAY), "Jan 15 – Feb 14, 2027");
        assert_eq!(period(T - 30 * DAY, T), "Dec 16, 2026 – Jan 15, 2027");
        assert_eq!(period(T, T), "Jan 15, 2027");
        assert_eq!(status("open"), "Due");
    }

    #[test]
    fn a_long_invoice_continues_on_more_pages_under_the_same_headers() {
        let pdf = render(&invoice(80), "Acme", "Tessera");
        let pages = page_count(&pdf);
        assert!(pages > 1, "{pages} page(s)");
        let headers = pdf.windows(b"(Description) Tj".len()).filter(|w| *w == b"(Description) Tj").count();
        assert_eq!(headers, pages);
        assert!(contains(&pdf, format!("(Page {pages} of {pages}) Tj").as_bytes()));
        assert!(contains(&pdf, format!("/Count {pages}").as_bytes()));
    }
}
