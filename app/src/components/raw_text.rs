//! User text in the two places the UI library writes it into the page unescaped.
//!
//! Leptos 0.8 renders the text of `<Title>` into `<head>` verbatim (leptos_meta 0.8.7), and
//! tachys 0.2 marks `<textarea>` like `<script>` and `<style>`, so its children are written
//! verbatim during server rendering too. `<title>` and `<textarea>` are escapable raw text in
//! HTML: the browser decodes character references there, so escaping is both correct and the
//! only thing that stops a name like `</title><script>…` from becoming markup. In the browser
//! both are set through the DOM, as text, so the escaping happens on the server only; what the
//! browser parses from the server's HTML is then exactly the string hydration expects.
//!
//! Pages never use `<Title>` or `<textarea>` directly (nor `<script>`, `<style>`, `<noscript>` or
//! `inner_html`): this module is the only place they appear, which a test here enforces.

use leptos::prelude::*;

/// `text` as it may stand between `<title>` or `<textarea>` tags in server-rendered HTML.
pub fn escapable_raw_text(text: &str) -> String {
    #[cfg(feature = "ssr")]
    {
        html_escape::encode_text(text).into_owned()
    }
    #[cfg(not(feature = "ssr"))]
    {
        text.to_string()
    }
}

/// The browser tab's title (the HTML `<title>`): "Projects · Tessera", or "Tessera" alone. Set
/// once, at the root.
#[component]
pub fn TabTitle() -> impl IntoView {
    let formatter = |title: String| {
        let full = if title.is_empty() { "Tessera".to_string() } else { format!("{title} · Tessera") };
        escapable_raw_text(&full)
    };
    view! { <leptos_meta::Title formatter /> }
}

/// This page's title; user text (an organization or project name) is safe here.
#[component]
pub fn PageTitle(#[prop(into)] text: String) -> impl IntoView {
    view! { <leptos_meta::Title text /> }
}

/// A `<textarea>` whose initial content may be user text.
#[component]
pub fn TextArea(
    #[prop(into)] id: String,
    name: &'static str,
    #[prop(default = 3)] rows: u32,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional, into)] value: String,
    /// The id of the text that explains it (its error message, say).
    #[prop(optional, into)]
    described_by: Option<String>,
) -> impl IntoView {
    view! {
        <textarea id=id name=name rows=rows placeholder=placeholder aria-describedby=described_by>
            {escapable_raw_text(&value)}
        </textarea>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn markup_in_raw_text_is_escaped_on_the_server() {
        assert_eq!(escapable_raw_text("</title><script>x()</script> & more"), "&lt;/title&gt;&lt;script&gt;x()&lt;/script&gt; &amp; more");
    }

    /// Every `<title>` and `<textarea>` goes through this module: a page that wrote one itself
    /// would bring the unescaped rendering back.
    #[test]
    fn pages_use_these_components_for_titles_and_textareas() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("components/raw_text.rs") {
                    let code = std::fs::read_to_string(&path).unwrap();
                    for needle in ["<textarea", "<Title", "leptos_meta::Title", "<script", "<style", "<noscript", "inner_html"] {
                        // The one reviewed `inner_html`: the QR code, an SVG drawn by the server
                        // from modules alone (no text in it).
                        let reviewed = needle == "inner_html" && path.ends_with("pages/security.rs") && code.matches("inner_html").count() == 1;
                        if code.contains(needle) && !reviewed {
                            offenders.push(format!("{} uses {needle}", path.display()));
                        }
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "use PageTitle/TextArea from components::raw_text instead:\n{}", offenders.join("\n"));
    }
}
