//! Form building blocks: labelled fields that show the server's message for that field, and
//! (once hydrated) check the input as you type with the same rules the server applies.

use leptos::prelude::*;
use tessera_domain::AppError;

/// The error a form's last submission produced, if any.
pub fn last_error<T, S>(action: ServerAction<S>) -> Signal<Option<AppError>>
where
    S: leptos::server_fn::ServerFn<Output = T, Error = AppError> + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(|result| result.err()))
}

/// A live check: the message to show for the current input, or `None` when it is fine.
pub type Check = fn(&str) -> Option<String>;

#[component]
pub fn Field(
    label: &'static str,
    name: &'static str,
    #[prop(into)] error: Signal<Option<AppError>>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional)] hint: &'static str,
    #[prop(optional)] required: bool,
    #[prop(optional)] check: Option<Check>,
    #[prop(optional, into)] value: Option<RwSignal<String>>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let live_error = RwSignal::new(None::<String>);
    let message = move || live_error.get().or_else(|| error.get().filter(|e| e.field() == Some(name)).map(|e| e.to_string()));
    let value = value.unwrap_or_else(|| RwSignal::new(String::new()));
    let on_input = move |ev| {
        let text = event_target_value(&ev);
        value.set(text.clone());
        if let Some(check) = check {
            live_error.set(if text.is_empty() { None } else { check(&text) });
        }
    };
    let described_by = {
        let (error_id, hint_id) = (error_id.clone(), hint_id.clone());
        move || {
            let mut ids = Vec::new();
            if !hint.is_empty() {
                ids.push(hint_id.clone());
            }
            if message().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="field" class:field-invalid=move || message().is_some()>
            <label for=id.clone()>{label}</label>
            <input
                id=id.clone()
                name=name
                type=kind
                autocomplete=(!autocomplete.is_empty()).then_some(autocomplete)
                required=required
                // The attribute is what the server renders (a form filled in before the app
                // loads, or without it, sends it back); the property follows typing after.
                value=value.get_untracked()
                prop:value=move || value.get()
                on:input=on_input
                aria-invalid=move || message().is_some().then_some("true")
                aria-describedby=described_by
            />
            {(!hint.is_empty()).then(|| view! { <p class="field-hint" id=hint_id.clone()>{hint}</p> })}
            <p class="field-error" id=error_id.clone() role="alert" aria-live="polite">
                {message}
            </p>
        </div>
    }
}

/// Errors that belong to no single field (permissions, conflicts elsewhere, outages).
#[component]
pub fn FormAlert(#[prop(into)] error: Signal<Option<AppError>>, fields: &'static [&'static str]) -> impl IntoView {
    let message = move || error.get().filter(|e| e.field().is_none_or(|f| !fields.contains(&f))).map(|e| e.to_string());
    view! {
        <Show when=move || message().is_some()>
            <div class="alert alert-error" role="alert">
                {message}
            </div>
        </Show>
    }
}

#[component]
pub fn Submit(
    label: &'static str,
    busy_label: &'static str,
    #[prop(into)] pending: Signal<bool>,
    /// For an action that destroys something.
    #[prop(optional)]
    danger: bool,
) -> impl IntoView {
    let class = if danger { "btn btn-danger" } else { "btn btn-primary" };
    view! {
        <button type="submit" class=class disabled=move || pending.get() aria-busy=move || pending.get().then_some("true")>
            {move || if pending.get() { busy_label } else { label }}
        </button>
    }
}

/// A multi-line field, laid out and tied to its error like [`Field`]. Its initial text is the
/// element's content, written through `raw_text::TextArea` (escaped there), so the server's
/// page already holds it, line breaks and all.
#[component]
pub fn TextAreaField(
    label: &'static str,
    name: &'static str,
    #[prop(into)] error: Signal<Option<AppError>>,
    #[prop(optional, into)] value: String,
    #[prop(default = 4)] rows: u32,
) -> impl IntoView {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    let message = move || error.get().filter(|e| e.field() == Some(name)).map(|e| e.to_string());
    view! {
        <div class="field" class:field-invalid=move || message().is_some()>
            <label for=id.clone()>{label}</label>
            <crate::components::raw_text::TextArea id=id name=name rows=rows value described_by=error_id.clone() />
            <p class="field-error" id=error_id role="alert" aria-live="polite">
                {message}
            </p>
        </div>
    }
}

/// A destructive action that asks first: `summary` opens a confirmation holding the form
/// (`children`: the question, hidden fields and a danger [`Submit`]). A plain `<details>`, so it
/// works before the app loads; `open` keeps it open, e.g. to show why the action failed.
#[component]
pub fn ConfirmDelete(summary: &'static str, #[prop(into)] open: Signal<bool>, children: Children) -> impl IntoView {
    view! {
        <details class="confirm-delete" open=move || open.get()>
            <summary class="btn btn-danger">{summary}</summary>
            {children()}
        </details>
    }
}
