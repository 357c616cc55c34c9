//! Single sign-on per organization with SAML: admins connect their IdP and prove their email
//! domains; people sign in through the IdP (started here or at the IdP) and land in the
//! organization with the role their groups map to; every forged, stale, replayed or
//! misdirected response is refused and recorded.

mod common;
use common::saml_idp::{encode, Mint, Signing, TestIdp};
use common::{Browser, Inbox, Response, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::Read;

/// Publishes the TXT record that proves `domain` in the DNS stand-in.
async fn publish_txt(name: &str, value: &str) {
    let api = std::env::var("TESSERA_TEST_DNS_API").expect("run with `cargo xtask test` (it starts the DNS stand-in)");
    let r = reqwest::Client::new().put(format!("{api}/records/{name}")).json(&json!({ "txt": [value] })).send().await.unwrap();
    assert!(r.status().is_success());
}

struct SsoOrg {
    slug: String,
    domain: String,
    owner: Browser,
    idp: TestIdp,
    entity_id: String,
    acs: String,
}

/// An organization with a verified domain and a connected IdP, mapping `groups` to roles.
async fn sso_org(app: &TestApp, slug: &str) -> SsoOrg {
    let owner = app.owner_of(slug).await;
    let domain = format!("{slug}-{}.test", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let r = owner.call("add_sso_domain", &[("slug", slug), ("domain", &domain)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let settings = owner.call("org_sso_settings", &[("slug", slug)]).await.json();
    let record = &settings["domains"][0];
    publish_txt(record["txt_name"].as_str().unwrap(), record["txt_value"].as_str().unwrap()).await;
    let r = owner.call("verify_sso_domain", &[("slug", slug), ("domain", &domain)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let idp = TestIdp::new(&format!("https://idp.{domain}/saml"));
    let r = owner.call("save_sso_idp", &[("slug", slug), ("metadata_xml", &idp.metadata("https://idp.example/sso")), ("metadata_url", "")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = owner
        .call(
            "save_sso_mapping",
            &[
                ("slug", slug),
                ("email_attribute", ""),
                ("name_attribute", "displayName"),
                ("groups_attribute", "groups"),
                ("group_roles", "admins = admin\nreaders = viewer"),
                ("default_role", "member"),
                ("jit_provisioning", "on"),
                ("allow_idp_initiated", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let entity_id = settings["sp_entity_id"].as_str().unwrap().to_string();
    let acs = settings["sp_acs_url"].as_str().unwrap().to_string();
    SsoOrg { slug: slug.to_string(), domain, owner, idp, entity_id, acs }
}

/// Starts an SP-initiated sign-in in `browser`; returns the AuthnRequest's id.
async fn start(browser: &Browser, org: &SsoOrg, next: &str) -> String {
    let r = browser.get(&format!("/sso/{}/login?next={next}", org.slug)).await;
    let to = r.location();
    assert!(to.starts_with("https://idp.example/sso?SAMLRequest="), "{to}");
    let url = reqwest::Url::parse(&to).unwrap();
    let encoded = url.query_pairs().find(|(k, _)| k == "SAMLRequest").unwrap().1.to_string();
    let deflated = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&deflated[..]).read_to_string(&mut xml).unwrap();
    assert!(xml.contains(&format!("AssertionConsumerServiceURL=\"{}\"", org.acs)) && xml.contains(&org.entity_id), "{xml}");
    xml.split("ID=\"").nth(1).unwrap().split('"').next().unwrap().to_string()
}

/// Posts a response to the ACS as the IdP's page does, then goes where the ACS sends the
/// browser, as a browser would: to finish an SP-initiated sign-in in this same browser. Returns
/// the last response (for an IdP-initiated sign-in, the redirect to the confirmation page).
async fn post_acs(browser: &Browser, slug: &str, saml_response: &str) -> Response {
    let r = browser.post_form(&format!("/sso/{slug}/acs"), &[("SAMLResponse", saml_response), ("RelayState", "")]).await;
    let to = r.location();
    if to.starts_with(&format!("/sso/{slug}/continue?")) {
        return browser.get(&to).await;
    }
    r
}

/// A whole SP-initiated sign-in of `email` in `browser`: start, the IdP's signed answer, the ACS.
async fn sign_in_through_idp(browser: &Browser, org: &SsoOrg, email: &str, next: &str) -> Response {
    let request = start(browser, org, next).await;
    post_acs(browser, &org.slug, &org.idp.response(&Mint::new(email, &org.entity_id, &org.acs, Some(&request)))).await
}

/// Confirms an IdP-initiated sign-in on our page, as the person would after reading it;
/// `r` is the ACS's answer. Returns the confirmation's answer.
async fn confirm_on_our_page(browser: &Browser, r: &Response, email: &str) -> Response {
    let to = r.location();
    assert!(to.starts_with("/login/sso/confirm?token="), "an IdP-initiated sign-in asks first: {to}");
    let page = browser.get(&to).await;
    assert!(page.body.contains(email), "the page says who would be signed in");
    assert_eq!(browser.call("my_session", &[]).await.json(), Value::Null, "nobody is signed in before the person confirms");
    browser.call("confirm_sso_handoff", &[("token", &common::token_of(&to))]).await
}

/// Refusals written to the organization's audit log.
async fn refusals(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM audit_log WHERE action = 'sso.login_refused'").await
}

/// Refusals counted (every one, logged or not).
async fn refusals_counted(app: &TestApp) -> i64 {
    app.count("SELECT coalesce(sum(refused), 0)::bigint FROM sso_refusals").await
}

/// Serves whatever IdP metadata the test puts in `xml`, at `url` (as an IdP publishes it).
struct MetadataHost {
    url: String,
    xml: std::sync::Arc<std::sync::Mutex<String>>,
}

async fn metadata_host(xml: String) -> MetadataHost {
    let xml = std::sync::Arc::new(std::sync::Mutex::new(xml));
    let served = xml.clone();
    let routes = axum::Router::new().route(
        "/metadata",
        axum::routing::get(move || {
            let body = served.lock().unwrap().clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metadata", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    MetadataHost { url, xml }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_their_organizations_idp_and_lands_with_their_mapped_role() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "acme").await;
    let email = format!("ada@{}", org.domain);

    // Our metadata, for the IdP admin to import.
    let metadata = app.browser().get("/sso/acme/metadata").await;
    assert!(metadata.body.contains(&format!("entityID=\"{}\"", org.entity_id)) && metadata.body.contains(&org.acs));
    // Any well-formed name gets its document, so the endpoint can't be used to find out which
    // organizations exist; a malformed one is not found.
    let other = app.browser().get("/sso/nobody/metadata").await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.body.contains("/sso/nobody/acs"));
    assert_eq!(app.browser().get("/sso/no%20body/metadata").await.status, StatusCode::NOT_FOUND);

    let browser = app.browser();
    let request = start(&browser, &org, "/t/acme/projects").await;
    let attrs = [("displayName", "Ada Lovelace"), ("groups", "admins")];
    let mint = Mint { attributes: &attrs, ..Mint::new(&email, &org.entity_id, &org.acs, Some(&request)) };
    let r = post_acs(&browser, "acme", &org.idp.response(&mint)).await;
    assert_eq!(r.location(), "/t/acme/projects", "{} {}", r.status, r.body);
    let me = browser.call("my_session", &[]).await.json();
    assert_eq!((me["user"]["email"].as_str(), me["user"]["display_name"].as_str()), (Some(email.as_str()), Some("Ada Lovelace")));
    assert_eq!(browser.call("load_org", &[("slug", "acme")]).await.json()["rights"]["BuiltIn"], "admin", "the admins group maps to Admin");

    // Next time the IdP says she's only in "readers": the role follows (and is audited).
    let again = app.browser();
    let request = start(&again, &org, "/").await;
    let attrs = [("displayName", "Ada Lovelace"), ("groups", "readers")];
    let mint = Mint { attributes: &attrs, ..Mint::new(&email, &org.entity_id, &org.acs, Some(&request)) };
    let r = post_acs(&again, "acme", &org.idp.response(&mint)).await;
    assert_eq!(r.location(), "/t/acme", "a bare sign-in lands in the organization");
    assert_eq!(again.call("load_org", &[("slug", "acme")]).await.json()["rights"]["BuiltIn"], "viewer");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2, "the same account both times (plus the owner)");

    // Only the assertion signed (as some IdPs do) is fine too.
    let third = app.browser();
    let request = start(&third, &org, "/").await;
    let mint = Mint { signing: Signing::Assertion, ..Mint::new(&email, &org.entity_id, &org.acs, Some(&request)) };
    let r = post_acs(&third, "acme", &org.idp.response(&mint)).await;
    assert_eq!(r.location(), "/t/acme", "{}", r.body);

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'sso.%' OR action LIKE 'membership.%' ORDER BY occurred_at")
            .fetch_all(&app.inspect)
            .await
            .unwrap();
    for expected in ["sso.idp_configured", "sso.settings_changed", "membership.added", "sso.login", "membership.role_changed"] {
        assert!(actions.iter().any(|a| a == expected), "{expected} in {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_at_the_idp_works_only_where_the_organization_allows_it() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "tiles").await;
    let email = format!("ida@{}", org.domain);
    let browser = app.browser();
    let r = post_acs(&browser, "tiles", &org.idp.response(&Mint::new(&email, &org.entity_id, &org.acs, None))).await;
    let r = confirm_on_our_page(&browser, &r, &email).await;
    assert_eq!(r.location(), "/t/tiles", "{}", r.body);
    assert_eq!(browser.call("load_org", &[("slug", "tiles")]).await.json()["rights"]["BuiltIn"], "member", "no group: the default role");

    let r = org
        .owner
        .call(
            "save_sso_mapping",
            &[
                ("slug", "tiles"),
                ("email_attribute", ""),
                ("name_attribute", ""),
                ("groups_attribute", ""),
                ("group_roles", ""),
                ("default_role", "member"),
                ("jit_provisioning", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let other = app.browser();
    let r = post_acs(&other, "tiles", &org.idp.response(&Mint::new(&email, &org.entity_id, &org.acs, None))).await;
    assert_eq!(r.location(), "/login?problem=1");
    assert!(other.call("take_sign_in_problem", &[]).await.json().as_str().unwrap().contains("doesn't answer a sign-in started here"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_replayed_and_misdirected_responses_are_refused_and_recorded() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "fort").await;
    let other = sso_org(&app, "elsewhere").await;
    let victim = format!("vic@{}", org.domain);
    let users_before = app.count("SELECT count(*) FROM users").await;

    struct Case {
        what: &'static str,
        response: String,
        expect: &'static str,
    }
    let browser = app.browser();
    let mut cases = Vec::new();
    let request = start(&browser, &org, "/").await;
    let good = |mint: Mint| org.idp.response(&mint);
    let base = || Mint::new(&victim, &org.entity_id, &org.acs, Some(&request));
    cases.push(Case { what: "unsigned", response: good(Mint { signing: Signing::Nothing, ..base() }), expect: "signature" });
    cases.push(Case { what: "signed by another IdP's key", response: TestIdp::new(&org.idp.entity_id).response(&base()), expect: "signature" });
    cases.push(Case {
        what: "another organization's IdP",
        response: other.idp.response(&Mint::new(&victim, &org.entity_id, &org.acs, Some(&request))),
        expect: "signature",
    });
    cases.push(Case { what: "wrong audience", response: good(Mint { audience: &other.entity_id, ..base() }), expect: "audience" });
    cases.push(Case { what: "wrong destination", response: good(Mint { acs_url: &other.acs, ..base() }), expect: "destination" });
    cases.push(Case { what: "expired", response: good(Mint { valid_for_secs: -600, ..base() }), expect: "expired" });
    cases.push(Case {
        what: "answers a request never made",
        response: good(Mint::new(&victim, &org.entity_id, &org.acs, Some("id-never-sent"))),
        expect: "doesn't answer a sign-in started here",
    });
    cases.push(Case {
        what: "address outside the verified domains",
        response: good(Mint::new("ceo@bank.example", &org.entity_id, &org.acs, Some(&request))),
        expect: "verified email domains",
    });
    // Tampering with signed content: swap the person after signing.
    let signed = org.idp.response_xml(&base());
    cases.push(Case { what: "tampered NameID", response: encode(&signed.replace(&victim, &format!("admin@{}", org.domain))), expect: "signature" });
    // Signature wrapping: an unsigned evil assertion beside (before) the signed one.
    let evil_assertion = {
        let start = signed.find("<saml2:Assertion").or_else(|| signed.find("<saml:Assertion")).expect("assertion element");
        let end_tag = if signed.contains("</saml2:Assertion>") { "</saml2:Assertion>" } else { "</saml:Assertion>" };
        let end = signed.find(end_tag).unwrap() + end_tag.len();
        signed[start..end].replace(&victim, &format!("mallory@{}", org.domain)).replace("ID=\"_", "ID=\"_evil")
    };
    let xsw_before = signed.replacen("<saml2:Assertion", &format!("{evil_assertion}<saml2:Assertion"), 1);
    cases.push(Case { what: "XSW: evil assertion first", response: encode(&xsw_before), expect: "signature didn't verify" });
    let xsw_extensions = signed.replacen("<saml2:Assertion", &format!("<samlp:Extensions>{evil_assertion}</samlp:Extensions><saml2:Assertion"), 1);
    cases.push(Case { what: "XSW: evil assertion in Extensions", response: encode(&xsw_extensions), expect: "signature didn't verify" });
    cases.push(Case { what: "not base64", response: "%%%not base64%%%".into(), expect: "isn't a valid SAML response" });
    cases.push(Case { what: "not XML", response: encode("hello"), expect: "signature didn't verify" });

    for (n, case) in cases.iter().enumerate() {
        let attacker = app.browser();
        let r = post_acs(&attacker, "fort", &case.response).await;
        assert_eq!(r.location(), "/login?problem=1", "{}: {} {}", case.what, r.status, r.body);
        let problem = attacker.call("take_sign_in_problem", &[]).await.json();
        assert!(problem.as_str().unwrap_or_default().contains(case.expect), "{}: {problem}", case.what);
        assert_eq!(attacker.call("my_session", &[]).await.json(), Value::Null, "{}: nobody signed in", case.what);
        assert_eq!(refusals_counted(&app).await, n as i64 + 1, "{}: counted", case.what);
    }
    // Each reason goes into the audit log once a quarter hour, as its code; repeats are counted.
    let reasons = app.count("SELECT count(*) FROM sso_refusals").await;
    assert!(reasons < cases.len() as i64, "several cases share a reason");
    assert_eq!(refusals(&app).await, reasons, "the first of each reason is in the audit log");
    assert_eq!(app.count("SELECT count(*) FROM users").await, users_before, "no account was made by any of them");
    let reasons: Vec<Value> =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'sso.login_refused'").fetch_all(&app.inspect).await.unwrap();
    let codes: Vec<&str> = tessera_backend::sso::saml::RefusalReason::ALL.iter().map(|r| r.name()).collect();
    assert!(reasons.iter().all(|c| c["reason"]["new"].as_str().is_some_and(|code| codes.contains(&code))), "{reasons:?}");

    // The genuine response still works once; replayed, it is refused.
    let genuine = org.idp.response(&base());
    let r = post_acs(&browser, "fort", &genuine).await;
    assert_eq!(r.location(), "/t/fort", "{}", r.body);
    let replayer = app.browser();
    let r = post_acs(&replayer, "fort", &genuine).await;
    assert_eq!(r.location(), "/login?problem=1");
    assert_eq!(replayer.call("my_session", &[]).await.json(), Value::Null);

    // A response for this organization posted to another organization's ACS goes nowhere.
    let request = start(&browser, &org, "/").await;
    let r = post_acs(&app.browser(), "elsewhere", &org.idp.response(&Mint::new(&victim, &org.entity_id, &org.acs, Some(&request)))).await;
    assert_eq!(r.location(), "/login?problem=1");
    // And the ACS without a response explains itself rather than failing.
    let r = app.browser().post_form("/sso/fort/acs", &[("nothing", "here")]).await;
    assert_eq!(r.location(), "/login?problem=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_connect_an_idp_and_prove_domains_and_mistakes_get_clear_answers() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("setup").await;
    let member = app.signed_up("mem@example.test").await;
    owner.invite_and_accept("setup", "mem@example.test", "member", &member).await;
    assert_eq!(member.call("org_sso_settings", &[("slug", "setup")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(member.call("add_sso_domain", &[("slug", "setup"), ("domain", "setup.test")]).await.status, StatusCode::FORBIDDEN);
    // Nor may an Admin: whoever controls the IdP can sign in as anyone at the domain, Owners too.
    let admin = app.signed_up("adm@example.test").await;
    owner.invite_and_accept("setup", "adm@example.test", "admin", &admin).await;
    assert_eq!(admin.call("org_sso_settings", &[("slug", "setup")]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.call("save_sso_idp", &[("slug", "setup"), ("metadata_xml", "<x/>"), ("metadata_url", "")]).await.status, StatusCode::FORBIDDEN);

    let idp_error = |r: &Response| (r.status, r.error_field());
    for (xml, url, field) in [
        ("", "", "metadata_xml"),
        ("<html>not metadata</html>", "", "metadata_xml"),
        (
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            "",
            "metadata_xml",
        ),
        ("", "http://127.0.0.1:9/metadata", "metadata_url"),
        ("", "ftp://idp.example/metadata", "metadata_url"),
    ] {
        let r = owner.call("save_sso_idp", &[("slug", "setup"), ("metadata_xml", xml), ("metadata_url", url)]).await;
        assert_eq!(idp_error(&r), (StatusCode::UNPROCESSABLE_ENTITY, Some(field.to_string())), "{xml}{url}: {}", r.body);
    }
    assert_eq!(app.count("SELECT count(*) FROM tenant_sso").await, 0);

    // Metadata by URL, from the real saml-idp stand-in.
    let saml_idp = std::env::var("TESSERA_TEST_SAML_IDP_URL").expect("run with `cargo xtask test`");
    let r = owner.call("save_sso_idp", &[("slug", "setup"), ("metadata_xml", ""), ("metadata_url", &format!("{saml_idp}/metadata"))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let settings = owner.call("org_sso_settings", &[("slug", "setup")]).await.json();
    assert_eq!(settings["idp_entity_id"], format!("{saml_idp}/metadata"));
    assert!(settings["idp_sso_url"].as_str().unwrap().starts_with(&saml_idp));

    // Requiring SSO needs a verified domain; mappings must make sense.
    let mapping = |extra: &[(&'static str, &'static str)]| {
        let mut form =
            vec![("slug", "setup"), ("email_attribute", "email"), ("name_attribute", ""), ("groups_attribute", ""), ("default_role", "member")];
        form.extend_from_slice(extra);
        form
    };
    let r = owner.call("save_sso_mapping", &mapping(&[("group_roles", ""), ("require_sso", "on")])).await;
    assert_eq!(idp_error(&r), (StatusCode::UNPROCESSABLE_ENTITY, Some("require_sso".into())));
    let r = owner.call("save_sso_mapping", &mapping(&[("group_roles", "admins = owner")])).await;
    assert_eq!(idp_error(&r), (StatusCode::UNPROCESSABLE_ENTITY, Some("group_roles".into())));
    let r = owner.call("save_sso_mapping", &mapping(&[("group_roles", "just words")])).await;
    assert_eq!(idp_error(&r), (StatusCode::UNPROCESSABLE_ENTITY, Some("group_roles".into())));

    // Domains: proved by DNS, and one organization's only.
    assert_eq!(idp_error(&owner.call("add_sso_domain", &[("slug", "setup"), ("domain", "not a domain")]).await).1.as_deref(), Some("domain"));
    let domain = format!("setup-{}.test", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    assert_eq!(owner.call("add_sso_domain", &[("slug", "setup"), ("domain", &format!("@{}", domain.to_uppercase()))]).await.status, StatusCode::OK);
    let r = owner.call("verify_sso_domain", &[("slug", "setup"), ("domain", &domain)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.error_message().contains("_tessera-challenge."), "{}", r.body);
    publish_txt(&format!("_tessera-challenge.{domain}"), "tessera-verification=wrong-token").await;
    assert_eq!(owner.call("verify_sso_domain", &[("slug", "setup"), ("domain", &domain)]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let settings = owner.call("org_sso_settings", &[("slug", "setup")]).await.json();
    publish_txt(settings["domains"][0]["txt_name"].as_str().unwrap(), settings["domains"][0]["txt_value"].as_str().unwrap()).await;
    assert_eq!(owner.call("verify_sso_domain", &[("slug", "setup"), ("domain", &domain)]).await.status, StatusCode::OK);
    assert_eq!(owner.call("org_sso_settings", &[("slug", "setup")]).await.json()["domains"][0]["verified"], true);
    // Another organization may claim it (nobody can squat on a domain by claiming it first),
    // but not verify it: even with its own record published, it is taken.
    let rival = app.owner_of("rival").await;
    assert_eq!(rival.call("add_sso_domain", &[("slug", "rival"), ("domain", &domain)]).await.status, StatusCode::OK);
    let theirs = rival.call("org_sso_settings", &[("slug", "rival")]).await.json();
    publish_txt(theirs["domains"][0]["txt_name"].as_str().unwrap(), theirs["domains"][0]["txt_value"].as_str().unwrap()).await;
    let r = rival.call("verify_sso_domain", &[("slug", "rival"), ("domain", &domain)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'domain.%' OR action LIKE 'sso.%' ORDER BY occurred_at")
            .fetch_all(&app.inspect)
            .await
            .unwrap();
    assert_eq!(actions, ["sso.idp_configured", "domain.added", "domain.verified", "domain.added"], "the last: the rival's claim");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organization_can_require_its_sso_and_its_owners_keep_a_way_in() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "strict").await;
    let pat = format!("pat@{}", org.domain);
    let browser = app.signed_up(&pat).await;
    org.owner.invite_and_accept("strict", &pat, "member", &browser).await;
    assert_eq!(browser.call("list_projects", &[("slug", "strict")]).await.status, StatusCode::OK, "not required yet");

    let r = org
        .owner
        .call(
            "save_sso_mapping",
            &[
                ("slug", "strict"),
                ("email_attribute", ""),
                ("name_attribute", ""),
                ("groups_attribute", ""),
                ("group_roles", ""),
                ("default_role", "member"),
                ("jit_provisioning", "on"),
                ("allow_idp_initiated", "on"),
                ("require_sso", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // The password session no longer gets in; the page says how to.
    let r = browser.call("list_projects", &[("slug", "strict")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("SsoRequired"), "{}", r.body);
    let page = browser.get("/t/strict/projects").await;
    assert!(page.body.contains("Single sign-on required") && page.body.contains("/sso/strict/login?next=/t/strict/projects"));
    // Nor does a fresh password login for that domain; the SSO finder points the way.
    let r = app.browser().call("log_in", &[("email", &pat), ("password", "correct horse battery")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Nor any other first factor: an emailed link, a reset, the API, another provider.
    for function in ["request_sign_in_link", "request_password_reset"] {
        let r = app.browser().call(function, &[("email", &pat)]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{function}: {}", r.body);
        assert!(r.body.contains("single sign-on"), "{}", r.body);
    }
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/token", app.base))
        .json(&json!({ "email": pat, "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "API sign-in");
    let elsewhere = app.browser();
    let login = common::IdpLogin { email: &pat, name: "Pat", email_verified: true, sub: None, secondary_email: None };
    elsewhere.through_idp("/auth/oidc/test/start", &login).await;
    assert_eq!(elsewhere.call("my_session", &[]).await.json(), Value::Null, "OpenID Connect doesn't get around it");
    let r = app.browser().call("find_sso", &[("email", &pat), ("next", "/t/strict")]).await;
    assert_eq!(r.json(), json!("/sso/strict/login?next=/t/strict"));
    assert_eq!(app.browser().call("find_sso", &[("email", "who@nowhere.test")]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The Owner (whose address is elsewhere) still gets in with a password.
    assert_eq!(org.owner.call("list_projects", &[("slug", "strict")]).await.status, StatusCode::OK);

    // Through the IdP, Pat is in.
    let sso = app.browser();
    let r = sign_in_through_idp(&sso, &org, &pat, "/t/strict/projects").await;
    assert_eq!(r.location(), "/t/strict/projects");
    assert_eq!(sso.call("list_projects", &[("slug", "strict")]).await.status, StatusCode::OK);

    // With two-factor required too, the IdP's sign-in counts, unless the organization says not.
    org.owner.enrol_in_mfa().await;
    let r = org.owner.call("set_org_sign_in_policy", &[("slug", "strict"), ("require_mfa", "on"), ("sso_satisfies_mfa", "on")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(sso.call("list_projects", &[("slug", "strict")]).await.status, StatusCode::OK);
    org.owner.call("set_org_sign_in_policy", &[("slug", "strict"), ("require_mfa", "on")]).await;
    let r = sso.call("list_projects", &[("slug", "strict")]).await;
    assert!(r.body.contains("MfaRequired"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_that_keeps_posting_bad_responses_is_turned_away_before_they_are_checked() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "acme").await;
    let email = format!("ada@{}", org.domain);
    let bucket = "sso:refused:ip:127.0.0.1";
    let hits_sql = format!("SELECT coalesce(sum(hits), 0)::bigint FROM auth_throttle WHERE bucket = '{bucket}'");

    // A refused response counts against the address it came from.
    let browser = app.browser();
    post_acs(&browser, "acme", "bm90IHhtbA==").await;
    assert_eq!((app.count(&hits_sql).await, refusals(&app).await), (1, 1));

    // Past the limit, even a genuine response is turned away unread, with a clear reason.
    sqlx::query("UPDATE auth_throttle SET hits = 30 WHERE bucket = $1").bind(bucket).execute(&app.inspect).await.unwrap();
    let r = sign_in_through_idp(&browser, &org, &email, "/").await;
    assert_eq!(r.location(), "/login?problem=1");
    let problem = browser.call("take_sign_in_problem", &[]).await.json();
    assert!(problem.as_str().unwrap().contains("Too many sign-ins from your network"), "{problem}");
    assert_eq!(browser.call("my_session", &[]).await.json(), Value::Null);
    assert_eq!(refusals(&app).await, 1, "not even looked at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_url_cannot_make_the_server_fetch_from_its_own_network() {
    // As deployed: private addresses are off limits (the other tests allow them for the
    // stand-in IdP on loopback).
    let app = TestApp::spawn_with(|c| c.sso_private_metadata_hosts = false).await;
    let owner = app.owner_of("setup").await;
    let saml_idp = std::env::var("TESSERA_TEST_SAML_IDP_URL").expect("run with `cargo xtask test`");
    let port = reqwest::Url::parse(&saml_idp).unwrap().port().unwrap();
    for url in [
        format!("{saml_idp}/metadata"),
        format!("https://localhost:{port}/metadata"),
        format!("http://[::ffff:127.0.0.1]:{port}/metadata"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/metadata".to_string(),
    ] {
        let r = owner.call("save_sso_idp", &[("slug", "setup"), ("metadata_xml", ""), ("metadata_url", &url)]).await;
        assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("metadata_url")), "{url}: {}", r.body);
        assert!(r.error_message().contains("private or local address"), "{url}: {}", r.error_message());
    }
    // A public host must serve it over https: the certificates in it are what every sign-in
    // is checked against.
    let r = owner.call("save_sso_idp", &[("slug", "setup"), ("metadata_xml", ""), ("metadata_url", "http://idp.example.com/metadata")]).await;
    assert_eq!((r.status, r.error_field().as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("metadata_url")), "{}", r.body);
    assert!(r.error_message().contains("https"), "{}", r.error_message());
    assert_eq!(app.count("SELECT count(*) FROM tenant_sso").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_published_at_a_url_is_read_again_each_day_but_may_not_switch_idps() {
    let app = TestApp::spawn().await;
    let owner = app.owner_of("setup").await;
    let saml_idp = std::env::var("TESSERA_TEST_SAML_IDP_URL").expect("run with `cargo xtask test`");
    let r = owner.call("save_sso_idp", &[("slug", "setup"), ("metadata_xml", ""), ("metadata_url", &format!("{saml_idp}/metadata"))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let refresh = || tessera_backend::sso::refresh_metadata(&app.backend.tenancy, &app.backend.sso, &app.backend.identity);
    assert_eq!(refresh().await.unwrap(), 0, "just read: not due");

    // A day on, and the IdP has published something new (a certificate rollover, say).
    sqlx::query(
        "UPDATE tenant_sso SET metadata_checked_at = now() - interval '25 hours', idp_metadata_xml = idp_metadata_xml || '<!-- before rollover -->'",
    )
    .execute(&app.inspect)
    .await
    .unwrap();
    assert_eq!(refresh().await.unwrap(), 1);
    let stored: String = sqlx::query_scalar("SELECT idp_metadata_xml FROM tenant_sso").fetch_one(&app.inspect).await.unwrap();
    assert!(!stored.contains("before rollover") && stored.contains("X509Certificate"), "the published metadata is in use");
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'sso.metadata_refreshed' AND actor_id IS NULL").await, 1);

    // Metadata at that URL naming another IdP is not taken: the connection stays as it was.
    sqlx::query("UPDATE tenant_sso SET metadata_checked_at = now() - interval '25 hours', idp_entity_id = 'https://idp.before.example'")
        .execute(&app.inspect)
        .await
        .unwrap();
    assert_eq!(refresh().await.unwrap(), 0);
    let (entity, still): (String, String) =
        sqlx::query_as("SELECT idp_entity_id, idp_metadata_xml FROM tenant_sso").fetch_one(&app.inspect).await.unwrap();
    assert_eq!((entity.as_str(), still == stored), ("https://idp.before.example", true));
    let reason: Value =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'sso.metadata_refresh_failed'").fetch_one(&app.inspect).await.unwrap();
    assert!(reason["reason"]["new"].as_str().unwrap().contains("names another IdP"), "{reason}");
    assert_eq!(refresh().await.unwrap(), 0, "checked: not due again today");
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'sso.metadata_refresh_failed'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_domain_ends_the_idps_say_over_the_accounts_it_linked_there() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "acme").await;
    let email = format!("ada@{}", org.domain);
    let r = sign_in_through_idp(&app.browser(), &org, &email, "/").await;
    assert_eq!(r.location(), "/t/acme", "{} {}", r.status, r.body);
    assert_eq!(app.count("SELECT count(*) FROM user_identities WHERE provider LIKE 'saml:%'").await, 1);

    let r = org.owner.call("remove_sso_domain", &[("slug", "acme"), ("domain", &org.domain)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.count("SELECT count(*) FROM user_identities WHERE provider LIKE 'saml:%'").await, 0, "the link went with the domain");

    // The same NameID, even asserted with an address the IdP doesn't own, signs nobody in.
    let later = app.browser();
    let r = sign_in_through_idp(&later, &org, &email, "/").await;
    assert_ne!(r.location(), "/t/acme");
    assert_eq!(later.call("my_session", &[]).await.json(), Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_can_only_sign_in_the_browser_that_started_it() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "bound").await;
    // The attacker starts a sign-in for their own account and gets a genuine response...
    let mallory = format!("mallory@{}", org.domain);
    let attacker = app.browser();
    let request = start(&attacker, &org, "/t/bound").await;
    let response = org.idp.response(&Mint::new(&mallory, &org.entity_id, &org.acs, Some(&request)));
    // ...and has the victim's browser post it (a hidden auto-submitting form on any site).
    let victim = app.browser();
    let r = post_acs(&victim, "bound", &response).await;
    assert_eq!(r.location(), "/login?problem=1", "{} {}", r.status, r.body);
    assert!(victim.call("take_sign_in_problem", &[]).await.json().as_str().unwrap().contains("started in another browser"));
    assert_eq!(victim.call("my_session", &[]).await.json(), Value::Null, "the victim's browser is not signed in as the attacker");

    // An unsolicited response posted from the victim's browser stops at our page, which names
    // the account; nothing happens unless the person chooses to continue.
    let r = post_acs(&victim, "bound", &org.idp.response(&Mint::new(&mallory, &org.entity_id, &org.acs, None))).await;
    let to = r.location();
    assert!(to.starts_with("/login/sso/confirm?token="), "{to}");
    let page = victim.get(&to).await;
    assert!(page.body.contains(&mallory) && page.body.contains("Continue to"), "{}", page.body);
    assert_eq!(victim.call("my_session", &[]).await.json(), Value::Null);
    // The SP-initiated finish can't be used to skip the question.
    let skipped = victim.get(&format!("/sso/bound/continue?token={}", common::token_of(&to))).await;
    assert_eq!(skipped.location(), "/login?problem=1");
    assert_eq!(victim.call("my_session", &[]).await.json(), Value::Null);
    // Only choosing to continue signs in, and a handoff works once.
    let r = victim.call("confirm_sso_handoff", &[("token", &common::token_of(&to))]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{} {}", r.status, r.body);
    assert_eq!(victim.call("my_session", &[]).await.json()["user"]["email"], mallory.as_str());
    let r = app.browser().call("confirm_sso_handoff", &[("token", &common::token_of(&to))]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "spent: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_responses_are_counted_and_only_the_first_of_each_reason_is_logged() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "acme").await;
    common::within_one_window(15, 60).await;
    for _ in 0..5 {
        post_acs(&app.browser(), "acme", "bm90IHhtbA==").await;
    }
    assert_eq!((refusals(&app).await, refusals_counted(&app).await), (1, 5), "one entry in the audit log, five counted");
    let settings = org.owner.call("org_sso_settings", &[("slug", "acme")]).await.json();
    let counts = settings["recent_refusals"].as_array().unwrap().clone();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0]["refused"], 5);
    assert!(counts[0]["reason"].as_str().unwrap().contains("signature"), "{counts:?}");
    // What is stored is a code from a fixed list, never text from the post.
    let stored: Vec<String> = sqlx::query_scalar("SELECT reason FROM sso_refusals").fetch_all(&app.inspect).await.unwrap();
    let logged: Vec<String> = sqlx::query_scalar("SELECT changes->'reason'->>'new' FROM audit_log WHERE action = 'sso.login_refused'")
        .fetch_all(&app.inspect)
        .await
        .unwrap();
    assert_eq!((stored, logged), (vec!["bad_signature".to_string()], vec!["bad_signature".to_string()]));
    let page = org.owner.get("/t/acme/sso").await;
    assert!(page.body.contains("Refused sign-ins") && page.body.contains("refusal-row"), "the admin sees the counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_idp_rolls_its_certificate_over_the_old_one_stays_trusted_for_two_weeks_and_the_owners_are_told() {
    let app = TestApp::spawn().await;
    // A fresh name: the mail catcher outlives the run, and the Owner's mail must be this one.
    let slug = format!("roll{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let org = sso_org(&app, &slug).await;
    let sso_url = "https://idp.example/sso";
    let host = metadata_host(org.idp.metadata(sso_url)).await;
    let r = org.owner.call("save_sso_idp", &[("slug", &slug), ("metadata_xml", ""), ("metadata_url", &host.url)]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let before = org.owner.call("org_sso_settings", &[("slug", &slug)]).await.json()["signing_certificates"].clone();

    // The IdP publishes a new certificate in its metadata, and goes on signing with the old key
    // for a while. The new metadata also lists a key of no stated use next to the signing one:
    // samael wouldn't check signatures against it, and the overlap mustn't either.
    let rolled = TestIdp::new(&org.idp.entity_id);
    let unmarked = TestIdp::new(&org.idp.entity_id);
    *host.xml.lock().unwrap() = rolled.metadata_with_unmarked_key(sso_url, &unmarked);
    sqlx::query("UPDATE tenant_sso SET metadata_checked_at = now() - interval '25 hours'").execute(&app.inspect).await.unwrap();
    assert_eq!(tessera_backend::sso::refresh_metadata(&app.backend.tenancy, &app.backend.sso, &app.backend.identity).await.unwrap(), 1);
    let settings = org.owner.call("org_sso_settings", &[("slug", &slug)]).await.json();
    let (now, previous) = (&settings["signing_certificates"], &settings["previous_certificates"]);
    assert_ne!(now, &before, "the new certificate is in use");
    assert_eq!(previous["fingerprints"], before, "the old one is still trusted");
    let until = (time::OffsetDateTime::now_utc() + time::Duration::days(14)).date().to_string();
    assert!(previous["trusted_until"].as_str().unwrap().starts_with(&until), "for two weeks: {previous}");
    let entry: Value =
        sqlx::query_scalar("SELECT changes FROM audit_log WHERE action = 'sso.metadata_refreshed'").fetch_one(&app.inspect).await.unwrap();
    assert_eq!((&entry["signing_certificates"]["old"], &entry["signing_certificates"]["new"]), (&before, now), "{entry}");

    // Each Owner is told, with both fingerprints.
    let mail = Inbox::latest(&format!("owner@{slug}.test"), "signing certificate changed").await;
    let text = mail["text"].as_str().unwrap();
    assert!(text.contains(before[0].as_str().unwrap()) && text.contains(now[0].as_str().unwrap()) && text.contains(&until), "{text}");

    // Both keys sign people in during the overlap.
    let email = format!("ada@{}", org.domain);
    let r = sign_in_through_idp(&app.browser(), &org, &email, "/").await;
    assert_eq!(r.location(), format!("/t/{slug}"), "signed with the old key: {} {}", r.status, r.body);
    let with_new_key = app.browser();
    let request = start(&with_new_key, &org, "/").await;
    let r = post_acs(&with_new_key, &slug, &rolled.response(&Mint::new(&email, &org.entity_id, &org.acs, Some(&request)))).await;
    assert_eq!(r.location(), format!("/t/{slug}"), "signed with the new key: {} {}", r.status, r.body);
    let with_unmarked_key = app.browser();
    let request = start(&with_unmarked_key, &org, "/").await;
    let r = post_acs(&with_unmarked_key, &slug, &unmarked.response(&Mint::new(&email, &org.entity_id, &org.acs, Some(&request)))).await;
    assert_eq!(r.location(), "/login?problem=1", "not signed with a signing key: {} {}", r.status, r.body);

    // After the overlap the old key is refused.
    sqlx::query("UPDATE tenant_sso SET previous_trusted_until = now() - interval '1 minute'").execute(&app.inspect).await.unwrap();
    let late = app.browser();
    let r = sign_in_through_idp(&late, &org, &email, "/").await;
    assert_eq!(r.location(), "/login?problem=1");
    let problem = late.call("take_sign_in_problem", &[]).await.json();
    assert!(problem.as_str().unwrap().contains("signature didn't verify"), "{problem}");
    assert!(org.owner.call("org_sso_settings", &[("slug", &slug)]).await.json()["previous_certificates"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_person_from_the_idp_takes_a_seat_and_is_turned_away_when_the_plan_has_none_left() {
    // Team with a single seat, which the Owner holds.
    let plans = std::env::temp_dir().join(format!("plans-{}.toml", uuid::Uuid::new_v4().simple()));
    let shipped = tessera_backend::billing::catalogue::SHIPPED;
    assert!(shipped.contains("seats = 25"));
    std::fs::write(&plans, shipped.replacen("seats = 25", "seats = 1", 1)).unwrap();
    let app = TestApp::spawn_billed(|c| c.billing.plans_file = Some(plans.clone())).await;
    let org = sso_org(&app, "acme").await;
    let users_before = app.count("SELECT count(*) FROM users").await;

    let browser = app.browser();
    let r = sign_in_through_idp(&browser, &org, &format!("grace@{}", org.domain), "/t/acme").await;
    assert_eq!(r.location(), "/login?problem=1", "{} {}", r.status, r.body);
    let problem = browser.call("take_sign_in_problem", &[]).await.json();
    assert!(
        problem
            .as_str()
            .unwrap_or_default()
            .contains("can't take new members right now (Your plan includes 1 seat; 1 is used. Upgrade or remove a member); tell one of its admins"),
        "{problem}"
    );
    assert_eq!(browser.call("my_session", &[]).await.json(), Value::Null, "nobody signed in");
    assert_eq!(app.count("SELECT count(*) FROM users").await, users_before, "no account was left behind");
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 1);
    let reasons: Vec<String> = sqlx::query_scalar("SELECT reason FROM sso_refusals").fetch_all(&app.inspect).await.unwrap();
    assert_eq!(reasons, vec!["no_room".to_string()]);
    let _ = std::fs::remove_file(plans);
}

/// Waits (up to ten seconds) until `sql` counts `wanted`: the job that follows a sign-in is on
/// its way.
async fn until_count(app: &TestApp, sql: &str, wanted: i64) {
    for _ in 0..100 {
        if app.count(sql).await == wanted {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.count(sql).await, wanted, "{sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_mirrors_an_idp_group_gets_its_members_from_each_sign_in() {
    let app = TestApp::spawn().await;
    let org = sso_org(&app, "acme").await;
    let email = format!("ada@{}", org.domain);
    let r = org.owner.call("create_group", &[("slug", "acme"), ("name", "Readers"), ("description", ""), ("idp_group", "readers")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let group = r.json()["id"].as_str().unwrap().to_string();
    let r = org.owner.call("create_project", &[("slug", "acme"), ("name", "Reading list"), ("description", ""), ("visibility", "restricted")]).await;
    assert!(r.status.is_success() || r.status.is_redirection(), "{}", r.body);
    let project = app.project_id("Reading list").await;
    let r = org
        .owner
        .call("share_project", &[("slug", "acme"), ("id", &project), ("grantee", &format!("group:{group}")), ("project_role", "viewer")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let in_group = format!("SELECT count(*) FROM shared.group_members WHERE group_id = '{group}'");

    // The IdP says Ada is in "readers": she joins as a Viewer and lands in the group.
    let browser = app.browser();
    let request = start(&browser, &org, "/").await;
    let attrs = [("displayName", "Ada Lovelace"), ("groups", "readers")];
    let mint = Mint { attributes: &attrs, ..Mint::new(&email, &org.entity_id, &org.acs, Some(&request)) };
    post_acs(&browser, "acme", &org.idp.response(&mint)).await;
    until_count(&app, &in_group, 1).await;
    let names = |list: Value| list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(browser.call("list_projects", &[("slug", "acme")]).await.json()), ["Reading list"], "the group's project is hers");

    // Its members are the IdP's to choose, not an admin's.
    let ada = app.user_id(&email).await;
    let r = org.owner.call("remove_group_member", &[("slug", "acme"), ("group", &group), ("user_id", &ada)]).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.error_message().contains("identity provider"), "{}", r.body);

    // Next time the IdP doesn't list "readers": she is out of the group, and the project is gone.
    let again = app.browser();
    let request = start(&again, &org, "/").await;
    let attrs = [("displayName", "Ada Lovelace"), ("groups", "staff")];
    let mint = Mint { attributes: &attrs, ..Mint::new(&email, &org.entity_id, &org.acs, Some(&request)) };
    post_acs(&again, "acme", &org.idp.response(&mint)).await;
    until_count(&app, &in_group, 0).await;
    assert_eq!(names(again.call("list_projects", &[("slug", "acme")]).await.json()), Vec::<String>::new());
    let trail: Vec<(String, Value)> = app.trail(&group).await;
    let actions: Vec<&str> = trail.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(actions, ["group.created", "group.member_added", "group.member_removed"]);
    assert_eq!(trail[1].1["via"]["new"], "sso groups");
}
