//! The browser entry point: takes over the server-rendered page (hydration).

use leptos::prelude::*;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Asynchronous: the page's own code may still be arriving (see app/src/routes.rs), so the
    // page is live only once this finishes, not when the app's root is.
    wasm_bindgen_futures::spawn_local(async {
        let app = leptos::mount::hydrate_from_async(document().body().expect("a page has a body"), tessera_app::App).await;
        // Marks the page as live: the end-to-end tests wait for this before typing into
        // client-side features (a field typed into before hydration is reset by it).
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "");
        }
        // And when, for anyone measuring it (`cargo xtask bench` reports it as time to interactive).
        if let Some(performance) = window().performance() {
            let _ = performance.mark("tessera:hydrated");
        }
        app.forget();
    });
}
