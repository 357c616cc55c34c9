import { expect, test, type Page } from "@playwright/test";
import { Secret, TOTP } from "otpauth";

const PASSWORD = "correct horse battery";
const unique = () => `${Date.now()}${Math.floor(Math.random() * 1000)}`;

// Browser-side failures (a panic during hydration, a failed fetch) go to the test output, so a
// journey that stalls says why. A Content-Security-Policy violation fails the journey: every
// script the pages need must carry the response's nonce.
const cspViolations: string[] = [];
test.beforeEach(({ page }) => {
  cspViolations.length = 0;
  page.on("pageerror", (error) => console.log(`[page error] ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") console.log(`[console error] ${message.text()}`);
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) cspViolations.push(`${page.url()}: ${message.text()}`);
  });
});
test.afterEach(() => {
  expect(cspViolations, "Content-Security-Policy violations").toEqual([]);
});

/** The app marks <html data-hydrated> once the WASM has taken over the page. (After a
 *  client-side navigation, wait for the new page's URL: its code may still be arriving.) */
async function hydrated(page: Page) {
  await expect(page.locator("html[data-hydrated]")).toHaveCount(1);
}

async function logIn(page: Page, email: string, password: string) {
  await page.goto("/login");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByTestId("current-user")).toBeVisible();
}

test("a founder signs up, creates an organization and a project, and another organization can't see it", async ({ page }) => {
  const id = unique();
  const slug = `journey-${id}`;

  await signUpConfirmed(page, `jo-${id}@example.com`, "Jo Founder");
  await expect(page.getByTestId("current-user")).toHaveText("Jo Founder");

  await page.getByRole("link", { name: "Create an organization" }).click();
  await expect(page).toHaveURL(/\/orgs\/new$/);
  await hydrated(page);
  // Instant feedback from the shared validation rules, before anything is sent.
  await page.getByLabel("URL name").fill("not valid!");
  await expect(page.getByText("Use only lowercase letters, digits and hyphens")).toBeVisible();
  await page.getByLabel("Organization name").fill(`Journey ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));
  await expect(page.getByTestId("my-role")).toHaveText("Owner");

  await page.getByRole("link", { name: "New project" }).click();
  await page.getByLabel("Project name").fill("Moonshot");
  await page.getByLabel("Description").fill("Land on the moon by Q3.");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/projects/[0-9a-f-]{36}$`));
  await expect(page.getByTestId("project-name")).toHaveText("Moonshot");
  const projectUrl = page.url();

  // The server renders it on its own: reload, and check the raw HTML too.
  await page.reload();
  await expect(page.getByTestId("project-name")).toHaveText("Moonshot");
  const html = await (await page.request.get(projectUrl)).text();
  expect(html).toContain("Land on the moon by Q3.");

  // A second project, then the client-side filter proves the page is hydrated and live.
  await page.goto(`/t/${slug}/projects/new`);
  await hydrated(page);
  await page.getByLabel("Project name").fill("Apollo");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByTestId("project-name")).toHaveText("Apollo");
  const apolloUrl = page.url();
  await page.goto(`/t/${slug}/projects`);
  await expect(page.getByTestId("project-row")).toHaveCount(2);
  await hydrated(page);
  await page.getByLabel("Filter projects").fill("moon");
  await expect(page.getByTestId("project-row")).toHaveCount(1);
  await expect(page.getByTestId("project-count")).toHaveText("1 of 2 projects");

  // The founder renames one, then deletes it, confirming first.
  await page.goto(apolloUrl);
  await hydrated(page);
  await page.getByTestId("edit-project").click();
  await expect(page.getByLabel("Project name")).toHaveValue("Apollo");
  await page.getByLabel("Project name").fill("Apollo 11");
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page).toHaveURL(apolloUrl);
  await expect(page.getByTestId("project-name")).toHaveText("Apollo 11");
  await page.getByText("Delete…").click();
  await page.getByRole("button", { name: "Delete project" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/projects$`));
  await expect(page.getByTestId("project-row")).toHaveCount(1);
  await expect(page.getByText("Apollo 11")).toHaveCount(0);

  // Someone from another organization gets a plain 404 for that URL.
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await logIn(page, "viewer@acme.test", "tessera-demo");
  const response = await page.goto(projectUrl);
  expect(response?.status()).toBe(404);
  await expect(page.getByTestId("not-found")).toBeVisible();
  await expect(page.getByText("Moonshot")).toHaveCount(0);
});

test("a viewer sees projects but no way to create one", async ({ page }) => {
  await logIn(page, "viewer@acme.test", "tessera-demo");
  await page.goto("/t/acme/projects");
  await expect(page.getByTestId("project-row").first()).toBeVisible();
  await expect(page.getByRole("link", { name: "New project" })).toHaveCount(0);
  await page.goto("/t/acme/projects/new");
  await expect(page.getByText("Your role can view projects but not create them")).toBeVisible();
  await expect(page.getByRole("button", { name: "Create project" })).toHaveCount(0);
});

test("a member writes, edits and deletes a document; a viewer reads it with no way to change it", async ({ page, browser }) => {
  const title = `Runbook ${unique()}`;
  await logIn(page, "member@acme.test", "tessera-demo");
  await page.goto("/t/acme/projects");
  await page.getByTestId("project-row").first().getByRole("link").click();
  await expect(page).toHaveURL(/\/t\/acme\/projects\/[0-9a-f-]{36}$/);
  const projectUrl = page.url();
  await hydrated(page);
  await page.getByTestId("new-document").click();
  await expect(page).toHaveURL(/\/documents\/new$/);
  await hydrated(page);
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Text").fill("Step one.\nStep two.");
  await page.getByRole("button", { name: "Save document" }).click();
  await expect(page).toHaveURL(/\/documents\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("document-title")).toHaveText(title);
  await expect(page.getByTestId("document-body")).toHaveText("Step one.\nStep two.");
  const documentUrl = page.url();

  await hydrated(page);
  await page.getByTestId("edit-document").click();
  await expect(page.getByLabel("Title")).toHaveValue(title);
  await page.getByLabel("Title").fill(`${title} v2`);
  await page.getByRole("button", { name: "Save changes" }).click();
  await expect(page).toHaveURL(documentUrl);
  await expect(page.getByTestId("document-title")).toHaveText(`${title} v2`);

  // A viewer reads it, is offered no edit, and the server refuses the change anyway.
  const viewer = await (await browser.newContext()).newPage();
  await logIn(viewer, "viewer@acme.test", "tessera-demo");
  await viewer.goto(documentUrl);
  await expect(viewer.getByTestId("document-title")).toHaveText(`${title} v2`);
  await hydrated(viewer);
  await expect(viewer.getByTestId("edit-document")).toHaveCount(0);
  await expect(viewer.getByText("Delete…")).toHaveCount(0);
  const [, , , project, , id] = new URL(documentUrl).pathname.split("/").slice(1);
  const refused = await viewer.request.post("/api/update_document", {
    headers: { Accept: "application/json" },
    form: { slug: "acme", project, id, title: "Viewer was here", body: "" },
  });
  expect(refused.status()).toBe(403);
  expect(JSON.stringify(await refused.json())).toContain("role");
  await viewer.context().close();

  // The member deletes it, confirming first, and lands back on the project.
  await page.getByText("Delete…").click();
  await page.getByRole("button", { name: "Delete document" }).click();
  await expect(page).toHaveURL(projectUrl);
  await expect(page.getByText(`${title} v2`)).toHaveCount(0);
});

test("a page whose code can't be fetched (a deploy replaced it) loads afresh instead of breaking", async ({ page }) => {
  await logIn(page, "member@acme.test", "tessera-demo");
  await page.goto("/t/acme/projects");
  await hydrated(page);
  // The project page's code is gone once, as for a tab opened before a deploy.
  let refused = 0;
  await page.route(/split___project_view_[0-9]+\.wasm/, (route) => (refused++ === 0 ? route.fulfill({ status: 404, body: "gone" }) : route.continue()));
  let loads = 0;
  page.on("load", () => loads++);
  await page.getByTestId("project-row").first().getByRole("link").click();
  await expect(page).toHaveURL(/\/t\/acme\/projects\/[0-9a-f-]{36}$/);
  await expect(page.getByTestId("project-name")).toBeVisible();
  await hydrated(page);
  expect(refused, "the page's code was asked for again after the failure").toBeGreaterThanOrEqual(2);
  expect(loads, "the page was loaded afresh").toBe(1);
});

test("a slow page shows that it is on its way", async ({ page }) => {
  await logIn(page, "member@acme.test", "tessera-demo");
  await page.goto("/t/acme/projects");
  await hydrated(page);
  await page.route(/split___project_view_[0-9]+\.wasm/, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await route.continue();
  });
  await page.getByTestId("project-row").first().getByRole("link").click();
  await expect(page.locator(".routing-progress progress")).toBeVisible();
  await expect(page.getByTestId("project-name")).toBeVisible();
  await expect(page.locator(".routing-progress progress")).toHaveCount(0);
});

test("an invitation shows up on the page the invitee has open, and they mark it read", async ({ page, browser }) => {
  const email = `invitee-${unique()}@example.test`;
  await signUpConfirmed(page, email);
  await hydrated(page);
  await expect(page.getByTestId("notifications")).toHaveAttribute("aria-label", "Notifications");

  // An admin invites them from another browser; their open page hears of it without a reload.
  const admin = await (await browser.newContext()).newPage();
  await logIn(admin, "admin@acme.test", "tessera-demo");
  const invited = await admin.request.post("/api/invite_member", {
    headers: { Accept: "application/json" },
    form: { slug: "acme", email, role: "member" },
  });
  expect(invited.status()).toBe(200);
  await admin.context().close();
  await expect(page.getByTestId("unread-count")).toHaveText("1");

  await page.getByTestId("notifications").click();
  await expect(page).toHaveURL(/\/notifications$/);
  await hydrated(page);
  const notification = page.getByTestId("notification").first();
  await expect(notification).toContainText("invited you to");
  await expect(notification).toContainText("New");
  await notification.getByRole("button", { name: "Mark as read" }).click();
  await expect(page.getByTestId("notification").first()).not.toContainText("New");
  await expect(page.getByTestId("unread-count")).toHaveCount(0);
});

test("an admin manages the team from the members page", async ({ page }) => {
  await logIn(page, "admin@acme.test", "tessera-demo");
  await page.goto("/t/acme/members");
  await hydrated(page);
  const viewerRow = page.getByTestId("member-row").filter({ hasText: "viewer@acme.test" });
  await viewerRow.getByLabel("Role of viewer@acme.test").selectOption("member");
  // Reload only once the server has answered: a reload would cancel the request in flight.
  await Promise.all([page.waitForResponse((r) => r.url().includes("change_role")), viewerRow.getByRole("button", { name: "Save" }).click()]);
  await page.reload();
  await expect(page.getByTestId("member-row").filter({ hasText: "viewer@acme.test" }).getByLabel("Role of viewer@acme.test")).toHaveValue("member");
  // Put it back for the other journeys.
  const row = page.getByTestId("member-row").filter({ hasText: "viewer@acme.test" });
  await hydrated(page);
  await row.getByLabel("Role of viewer@acme.test").selectOption("viewer");
  await Promise.all([page.waitForResponse((r) => r.url().includes("change_role")), row.getByRole("button", { name: "Save" }).click()]);
  await page.reload();
  await expect(page.getByTestId("member-row").filter({ hasText: "viewer@acme.test" }).getByLabel("Role of viewer@acme.test")).toHaveValue("viewer");
  // Owners are out of an admin's reach: no role picker on their row.
  await expect(page.getByTestId("member-row").filter({ hasText: "owner@acme.test" }).locator("select")).toHaveCount(0);

  // The audit log has both changes, filtered to what this admin did to roles; the filters are
  // in the URL. Exporting needs a plan this trial isn't on, and the page says so.
  await page.getByRole("link", { name: "Audit log" }).click();
  await expect(page).toHaveURL(/\/t\/acme\/settings\/audit$/);
  await page.getByRole("link", { name: "Check integrity" }).click();
  await expect(page.getByTestId("audit-integrity")).toContainText("Integrity: verified");
  await expect(async () => {
    await page.getByLabel("Who").selectOption({ label: "Demo Admin" });
    await page.getByLabel("Action").fill("membership.role_changed");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect(page).toHaveURL(/actor=.*action=membership.role_changed/, { timeout: 2_000 });
  }).toPass({ timeout: 15_000 });
  const changes = page.getByTestId("audit-event");
  await expect(changes.first()).toBeVisible();
  await expect(changes.filter({ hasNotText: "membership.role_changed" })).toHaveCount(0);
  await changes.first().locator("summary").click();
  await expect(changes.first().getByTestId("audit-changes")).toContainText("viewer");
  await expect(page.getByTestId("audit-export-upsell")).toBeVisible();
});

/** Rows of a CSV file (RFC 4180: quoted cells may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else if (c !== "\r") {
      cell += c;
    }
  }
  if (cell !== "" || row.length > 0) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("forms still work and show the server's errors", async ({ page }) => {
    await page.goto("/login");
    await page.getByLabel("Email").fill("member@acme.test");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByText("That email and password don't match an account")).toBeVisible();

    await page.getByLabel("Email").fill("member@acme.test");
    await page.getByLabel("Password").fill("tessera-demo");
    await page.getByRole("button", { name: "Log in" }).click();
    await expect(page.getByRole("heading", { name: "Your organizations" })).toBeVisible();

    await page.goto("/t/acme/projects/new");
    await page.getByLabel("Project name").fill(`No-JS ${unique()}`);
    await page.getByRole("button", { name: "Create project" }).click();
    await expect(page).toHaveURL(/\/t\/acme\/projects\/[0-9a-f-]{36}$/);
    await expect(page.getByTestId("project-name")).toContainText("No-JS");
  });
});

test("a founder keeps their data in the US in a dedicated database, and the admin sees where it lives", async ({ page }) => {
  const id = unique();
  const slug = `residency-${id}`;
  await signUpConfirmed(page, `rae-${id}@example.com`, "Rae Resident");

  await page.goto("/orgs/new");
  await hydrated(page);
  await expect(page.getByRole("radio", { name: "eu" })).toBeChecked();
  await page.getByLabel("Organization name").fill(`Resident ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("radio", { name: "us" }).check();
  await page.getByRole("radio", { name: /Dedicated database/ }).check();
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));

  await page.getByRole("link", { name: "New project" }).click();
  await page.getByLabel("Project name").fill("Stays in the US");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByTestId("project-name")).toHaveText("Stays in the US");

  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.getByTestId("data-region")).toHaveText("us");
  await expect(page.getByTestId("data-model")).toHaveText("Dedicated database");
});

test("the demo owner finds one organization per tenancy model, each with its projects", async ({ page }) => {
  await logIn(page, "owner@acme.test", "tessera-demo");
  for (const [slug, model] of [
    ["acme", "Shared database"],
    ["globex", "Own schema"],
    ["initech", "Dedicated database"],
  ]) {
    await page.goto(`/t/${slug}/projects`);
    await expect(page.getByTestId("project-row").filter({ hasText: "Data warehouse" })).toHaveCount(1);
    expect(await page.getByTestId("project-row").count()).toBeGreaterThanOrEqual(3);
    await page.goto(`/t/${slug}/settings`);
    await expect(page.getByTestId("data-model")).toHaveText(model);
  }
});

test("an owner schedules their organization for deletion, sees it read-only, and changes their mind", async ({ page }) => {
  const id = unique();
  const slug = `farewell-${id}`;
  await signUpConfirmed(page, `flo-${id}@example.com`, "Flo Leaving");
  await page.goto("/orgs/new");
  await hydrated(page);
  await page.getByLabel("Organization name").fill(`Farewell ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("radio", { name: /Own schema/ }).check();
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));

  await page.getByRole("link", { name: "Settings" }).click();
  await hydrated(page);
  await expect(page.getByTestId("data-model")).toHaveText("Own schema");
  // The wrong name is refused in place.
  await page.getByLabel("Type the URL name to confirm").fill("something-else");
  await page.getByRole("button", { name: "Delete organization" }).click();
  await expect(page.getByText(`Type the organization's URL name, ${slug}, to confirm.`)).toBeVisible();
  await page.getByLabel("Type the URL name to confirm").fill(slug);
  await page.getByRole("button", { name: "Delete organization" }).click();
  await expect(page.getByRole("heading", { name: "Scheduled for deletion" })).toBeVisible();
  await expect(page.getByTestId("deletion-date")).toContainText("deleted permanently after");

  // Read-only meanwhile: creating a project explains why not.
  await page.goto(`/t/${slug}/projects/new`);
  await hydrated(page);
  await page.getByLabel("Project name").fill("One more thing");
  await page.getByRole("button", { name: "Create project" }).click();
  await expect(page.getByText("scheduled for deletion")).toBeVisible();

  await page.goto(`/t/${slug}/settings`);
  await hydrated(page);
  await page.getByRole("button", { name: "Cancel deletion" }).click();
  await expect(page.getByRole("heading", { name: "Delete this organization" })).toBeVisible();
});

/**
 * The newest mail to `to` received after `since` in the SMTP catcher the test command runs,
 * and its first link to `path` (the catcher outlives one run of the suite, so older mails to
 * the same demo address may be there too).
 */
async function emailedLink(page: Page, to: string, path: string, since: Date): Promise<string> {
  const maildev = process.env.MAILDEV_URL;
  if (!maildev) throw new Error("MAILDEV_URL is not set: run the suite with `cargo xtask test`");
  let link: string | undefined;
  await expect
    .poll(async () => {
      const mails = (await (await page.request.get(`${maildev}/api/email`)).json()) as Array<{
        envelope: { to: Array<{ address: string }> };
        text: string;
        time: string;
      }>;
      const mine = mails.filter(
        (m) => m.envelope.to.some((t) => t.address === to) && m.text.includes(path) && new Date(m.time) >= since,
      );
      link = mine.at(-1)?.text.split(/\s+/).find((word) => word.includes(path));
      return link;
    })
    .toBeTruthy();
  return new URL(link!).pathname + new URL(link!).search;
}

// Signs up with a password and confirms the address from the welcome mail, which signs them in
// (creating an organization takes a confirmed address).
async function signUpConfirmed(page: Page, email: string, name?: string) {
  await page.goto("/signup");
  await hydrated(page);
  if (name) await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Work email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  const start = new Date(Date.now() - 1000);
  await page.getByRole("button", { name: "Create account" }).click();
  // Nobody is signed in yet: the link in the mail finishes it, in this browser.
  await expect(page.getByTestId("sign-up-sent")).toContainText(email);
  await page.goto(await emailedLink(page, email, "/auth/verify?token=", start));
  await page.getByRole("button", { name: "Confirm my email" }).click();
  await expect(page.getByRole("heading", { name: "Your organizations" })).toBeVisible();
  await expect(page.getByTestId("verify-reminder")).toHaveCount(0);
}

test("a member signs in with a link from their inbox, without a password", async ({ page }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.getByRole("link", { name: "Email me a sign-in link instead" }).click();
  await expect(page).toHaveURL(/\/login\/link$/);
  await hydrated(page);
  await page.getByLabel("Email").fill("member@acme.test");
  const asked = new Date(Date.now() - 1000);
  await page.getByRole("button", { name: "Email me a link" }).click();
  await expect(page.getByTestId("link-sent")).toContainText("Check your inbox");

  const link = await emailedLink(page, "member@acme.test", "/auth/magic?token=", asked);
  await page.goto(link);
  await expect(page.getByTestId("link-email")).toHaveText("member@acme.test");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Your organizations" })).toBeVisible();
  await expect(page.getByTestId("current-user")).toBeVisible();

  // The link worked once.
  await page.goto(link);
  await expect(page.getByText("This link has expired or has already been used")).toBeVisible();
});

test("someone who forgot their password resets it from the emailed link", async ({ page }) => {
  const id = unique();
  const email = `pat-${id}@example.com`;
  await signUpConfirmed(page, email);
  await page.getByRole("button", { name: "Log out" }).click();

  await page.goto("/login");
  await hydrated(page);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await expect(page).toHaveURL(/\/forgot$/);
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  const asked = new Date(Date.now() - 1000);
  await page.getByRole("button", { name: "Email me a reset link" }).click();
  await expect(page.getByTestId("link-sent")).toBeVisible();
  await page.goto(await emailedLink(page, email, "/auth/reset?token=", asked));
  await hydrated(page);
  await page.getByLabel("New password").fill("an even better passphrase");
  await page.getByRole("button", { name: "Save password and sign in" }).click();
  await expect(page.getByRole("heading", { name: "Your organizations" })).toBeVisible();

  await page.getByRole("button", { name: "Log out" }).click();
  await logIn(page, email, "an even better passphrase");
});

/** What an authenticator app shows for `secret` right now (or `steps` 30-second steps on). */
function totpCode(secret: string, steps = 0): string {
  const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: "SHA1", digits: 6, period: 30 });
  return totp.generate({ timestamp: Date.now() + steps * 30_000 });
}

/** From the Security page: scans (reads) the key, confirms with a code, returns the key. */
async function turnOnTwoFactor(page: Page): Promise<string> {
  await hydrated(page);
  await page.getByRole("button", { name: "Set up authenticator app" }).click();
  await expect(page.locator(".qr svg")).toBeVisible();
  const secret = (await page.getByTestId("totp-secret").textContent())!.trim();
  await page.getByLabel("Code from the app").fill(totpCode(secret));
  await page.getByRole("button", { name: "Turn on" }).click();
  await expect(page.getByTestId("recovery-codes").locator("li")).toHaveCount(10);
  return secret;
}

test("an organization that requires two-factor sends a member to set it up, then lets them in", async ({ page, browser }) => {
  const id = unique();
  const slug = `vault-${id}`;
  const memberEmail = `mo-${id}@example.com`;

  // The future member signs up and confirms their address (so they can be added).
  const memberContext = await browser.newContext();
  const member = await memberContext.newPage();
  await signUpConfirmed(member, memberEmail);

  // The founder creates the organization and adds them.
  // (Two-factor can only be set up on a confirmed address.)
  await signUpConfirmed(page, `founder-${id}@example.com`);
  await page.goto("/orgs/new");
  await hydrated(page);
  await page.getByLabel("Organization name").fill(`Vault ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));
  await page.goto(`/t/${slug}/members`);
  await hydrated(page);
  await page.getByLabel("Email").fill(memberEmail);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByTestId("invitation-row").filter({ hasText: memberEmail })).toBeVisible();
  // The member accepts from their home page (their address is confirmed).
  await member.goto("/");
  await hydrated(member);
  await member.getByTestId("invitation-for-me").filter({ hasText: `Vault ${id}` }).getByRole("button", { name: "Accept" }).click();
  await expect(member).toHaveURL(new RegExp(`/t/${slug}$`));
  await page.reload();
  await expect(page.getByTestId("member-row").filter({ hasText: memberEmail })).toBeVisible();

  // Requiring two-factor is refused until the founder uses it themselves.
  await page.goto(`/t/${slug}/settings`);
  await hydrated(page);
  await page.getByLabel("Require two-factor authentication for every member").check();
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("Turn on two-factor authentication for your own account first")).toBeVisible();
  await page.getByTestId("current-user").click();
  await expect(page).toHaveURL(/\/account\/security$/);
  await turnOnTwoFactor(page);
  await page.goto(`/t/${slug}/settings`);
  await hydrated(page);
  await page.getByLabel("Require two-factor authentication for every member").check();
  // Reload only once the server has answered ("network idle" can come before the request).
  await Promise.all([
    page.waitForResponse((r) => r.url().includes("set_org_sign_in_policy") && r.ok()),
    page.getByRole("button", { name: "Save" }).click(),
  ]);
  await page.reload();
  await expect(page.getByLabel("Require two-factor authentication for every member")).toBeChecked();
  await expect(page.getByTestId("members-without-mfa")).toContainText("1 member hasn't set up two-factor");

  // The member is stopped at the door and sent to set it up, then brought back.
  await member.goto(`/t/${slug}/projects`);
  await expect(member.getByTestId("mfa-required")).toContainText(`Vault ${id} requires two-factor authentication`);
  await member.getByRole("link", { name: "Set up two-factor authentication" }).click();
  await expect(member).toHaveURL(new RegExp(`/account/security\\?next=/t/${slug}/projects$`));
  const secret = await turnOnTwoFactor(member);
  await member.getByTestId("continue").click();
  await expect(member).toHaveURL(new RegExp(`/t/${slug}/projects$`));
  await expect(member.getByRole("heading", { name: "Projects", level: 1 })).toBeVisible();

  // Next time, the password alone isn't enough: the app's code completes the sign-in.
  await member.getByRole("button", { name: "Log out" }).click();
  await member.goto(`/login?next=/t/${slug}`);
  await hydrated(member);
  await member.getByLabel("Email").fill(memberEmail);
  await member.getByLabel("Password").fill(PASSWORD);
  await member.getByRole("button", { name: "Log in" }).click();
  await expect(member).toHaveURL(/\/login\/mfa/);
  await hydrated(member);
  await member.getByLabel("Authentication code").fill("000000");
  await member.getByRole("button", { name: "Verify" }).click();
  await expect(member.getByText("That code didn't work")).toBeVisible();
  await member.getByLabel("Authentication code").fill(totpCode(secret, 1));
  await member.getByRole("button", { name: "Verify" }).click();
  await expect(member).toHaveURL(new RegExp(`/t/${slug}$`));
  await expect(member.getByTestId("my-role")).toHaveText("Member");
  await memberContext.close();
});

test("a newcomer continues with their identity provider, lands signed in, and sees the connection", async ({ page, browser }) => {
  const id = unique();
  const email = `oidc-${id}@example.com`;
  await page.goto("/login?next=/orgs/new");
  await hydrated(page);
  await page.getByRole("link", { name: "Continue with Test IdP" }).click();

  // The provider's own sign-in page.
  await expect(page).toHaveTitle("Test identity provider");
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Name").fill("Oli Dee");
  await page.getByRole("button", { name: "Sign in" }).click();

  // Back in Tessera, signed in, where they were heading.
  await expect(page).toHaveURL(/\/orgs\/new$/);
  await expect(page.getByTestId("current-user")).toHaveText("Oli Dee");
  await page.getByTestId("current-user").click();
  await expect(page.getByTestId("linked-identity")).toContainText("Test IdP");
  await expect(page.getByTestId("linked-identity")).toContainText(email);

  // An unverified address at the provider is refused, with the reason on the sign-in page.
  // (A new browser: this one is still signed in at the provider, which would skip its form.)
  await page.context().close();
  page = await (await browser.newContext()).newPage();
  await page.goto("/login");
  await hydrated(page);
  await page.getByRole("link", { name: "Continue with Test IdP" }).click();
  await page.getByLabel("Email", { exact: true }).fill(`unverified-${id}@example.com`);
  await page.getByLabel("Email verified").uncheck();
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/login\?problem=1$/);
  await expect(page.getByTestId("sign-in-problem")).toContainText("isn't verified");
});

test("an admin invites a newcomer by email; they create their account from the link and land in the organization", async ({ page, browser }) => {
  const id = unique();
  const email = `newcomer-${id}@example.com`;
  await logIn(page, "admin@acme.test", "tessera-demo");
  await page.goto("/t/acme/members");
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  const sent = new Date(Date.now() - 1000);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByTestId("invitation-sent")).toContainText(`Invitation sent to ${email}`);
  await expect(page.getByTestId("invitation-row").filter({ hasText: email })).toContainText("Viewer");

  // The newcomer opens the mail in their own browser: no account yet.
  const newcomer = await (await browser.newContext()).newPage();
  await newcomer.goto(await emailedLink(newcomer, email, "/invite?token=", sent));
  await expect(newcomer.getByRole("heading", { name: "Join Acme Corporation" })).toBeVisible();
  await expect(newcomer.getByTestId("invited-line")).toContainText("Demo Admin (admin@acme.test) invited you to join Acme Corporation as a Viewer.");
  await hydrated(newcomer);
  await newcomer.getByRole("link", { name: "Create an account" }).click();
  await hydrated(newcomer);
  await expect(newcomer.getByLabel("Work email")).toHaveValue(email);
  await newcomer.getByLabel("Password").fill(PASSWORD);
  await newcomer.getByRole("button", { name: "Create account" }).click();

  // Back at the invitation, signed in as the invited address.
  await expect(newcomer).toHaveURL(/\/invite\?token=/);
  await hydrated(newcomer);
  await newcomer.getByRole("button", { name: "Accept and join" }).click();
  await expect(newcomer).toHaveURL(/\/t\/acme$/);
  await expect(newcomer.getByTestId("my-role")).toHaveText("Viewer");

  // The admin sees them on the team, and no longer among the pending invitations.
  await page.reload();
  await expect(page.getByTestId("member-row").filter({ hasText: email })).toBeVisible();
  await expect(page.getByTestId("invitation-row").filter({ hasText: email })).toHaveCount(0);
});

test("a developer connects GitHub on their security page, then signs in with it", async ({ page, browser }) => {
  const id = unique();
  const email = `dev-${id}@example.com`;
  const githubEmail = `octo-${id}@users.example.com`;
  await signUpConfirmed(page, email);

  await page.goto("/account/security");
  await hydrated(page);
  await page.getByRole("button", { name: "Connect GitHub" }).click();
  // GitHub's own page (the stand-in); any address of theirs will do, they are signed in.
  await expect(page).toHaveTitle("Sign in to GitHub stand-in");
  await page.getByLabel("Email", { exact: true }).fill(githubEmail);
  await page.getByRole("button", { name: "Authorize" }).click();
  await expect(page).toHaveURL(/\/account\/security\?connected=1$/);
  await expect(page.getByText("Connected. You can now sign in with it.")).toBeVisible();
  await expect(page.getByTestId("linked-identity")).toContainText("GitHub");
  await expect(page.getByTestId("linked-identity")).toContainText(githubEmail);

  // Another browser: "Continue with GitHub" finds their account.
  const laptop = await (await browser.newContext()).newPage();
  await laptop.goto("/login");
  await hydrated(laptop);
  await laptop.getByRole("link", { name: "Continue with GitHub" }).click();
  await laptop.getByLabel("Email", { exact: true }).fill(githubEmail);
  await laptop.getByRole("button", { name: "Authorize" }).click();
  await expect(laptop.getByRole("heading", { name: "Your organizations" })).toBeVisible();
  await expect(laptop.getByTestId("current-user")).toHaveText(email);
});

test("an admin connects their SAML IdP and proves their domain; a colleague signs in through it with the mapped role", async ({ page, browser }) => {
  const id = unique();
  const slug = `sso-${id}`;
  const domain = `corp${id}.test`;
  const dnsApi = process.env.DNS_API_URL;
  const samlIdp = process.env.SAML_IDP_URL;
  if (!dnsApi || !samlIdp) throw new Error("DNS_API_URL and SAML_IDP_URL are set by `cargo xtask test`");

  await signUpConfirmed(page, `it-${id}@example.com`);
  await page.goto("/orgs/new");
  await hydrated(page);
  await page.getByLabel("Organization name").fill(`Corp ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));
  await page.getByRole("link", { name: "Single sign-on" }).click();
  await expect(page.getByRole("heading", { name: "Single sign-on", level: 1 })).toBeVisible();
  await hydrated(page);

  // Prove the domain: publish the TXT record the page asks for, then verify.
  await page.getByRole("textbox", { name: "Domain" }).fill(domain);
  await page.getByRole("button", { name: "Add domain" }).click();
  const txtName = (await page.getByTestId("txt-name").textContent())!;
  const txtValue = (await page.getByTestId("txt-value").textContent())!;
  await page.request.put(`${dnsApi}/records/${txtName}`, { data: { txt: [txtValue] } });
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId("sso-domain")).toContainText("Verified");

  // Connect the IdP by its metadata URL, and map its "admins" group to Admin.
  await page.getByLabel("Metadata URL").fill(`${samlIdp}/metadata`);
  await page.getByRole("button", { name: "Save identity provider" }).click();
  await expect(page.getByTestId("idp-connected")).toContainText(`${samlIdp}/metadata`);
  await page.getByLabel("Groups attribute").fill("groups");
  await page.getByLabel("Groups to roles").fill("admins = admin");
  await page.getByRole("button", { name: "Save sign-in rules" }).click();
  await expect(page.getByTestId("mapping-saved")).toBeVisible();

  // A colleague, new to Tessera, signs in with SSO from the login page.
  const colleague = await (await browser.newContext()).newPage();
  await colleague.goto("/login");
  await hydrated(colleague);
  await colleague.getByRole("link", { name: "Sign in with SSO" }).click();
  await hydrated(colleague);
  await colleague.getByLabel("Work email").fill(`ada@${domain}`);
  await colleague.getByRole("button", { name: "Continue" }).click();

  // The IdP's own sign-in page.
  await expect(colleague.locator("#userName")).toBeVisible();
  await colleague.locator("#userName").fill(`ada@${domain}`);
  await colleague.locator("#email").fill(`ada@${domain}`);
  await colleague.locator("#firstName").fill("Ada");
  await colleague.locator("#lastName").fill("Lovelace");
  await colleague.locator("#displayName").fill("Ada Lovelace");
  await colleague.locator("#groups").evaluate((el, v) => {
    (el as HTMLInputElement).value = v;
  }, "admins");
  await colleague.getByRole("button", { name: "Sign in" }).click();

  // Back in Tessera, in the organization, as an Admin.
  await expect(colleague).toHaveURL(new RegExp(`/t/${slug}$`));
  await expect(colleague.getByTestId("my-role")).toHaveText("Admin");
  await expect(colleague.getByTestId("current-user")).toHaveText(`ada@${domain}`);
  await colleague.context().close();
});

test("an admin connects a webhook endpoint, keeps its secret, and watches a test event arrive", async ({ page }) => {
  // The integrator's receiver, on loopback.
  const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const { createServer } = await import("node:http");
  const receiver = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body });
      response.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const address = receiver.address();
  const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/hooks/${unique()}`;
  try {
    await logIn(page, "admin@acme.test", "tessera-demo");
    await page.goto("/t/acme/settings/webhooks");
    await hydrated(page);
    await page.getByLabel("Endpoint URL").fill(url);
    await page.getByRole("textbox", { name: "Description", exact: true }).fill("Journey receiver");
    await page.getByRole("checkbox", { name: /project\.created/ }).check();
    await page.getByRole("button", { name: "Add endpoint" }).click();
    const secret = page.getByTestId("webhook-secret");
    await expect(secret).toContainText("whsec_");
    const signingSecret = (await secret.textContent())!.trim();
    await expect(page.getByTestId("webhook-endpoint-row").filter({ hasText: url })).toBeVisible();

    await page.getByRole("link", { name: "Go to the endpoint" }).click();
    await expect(page.getByTestId("webhook-url")).toHaveText(url);
    await hydrated(page);
    await page.getByRole("button", { name: "Send test event" }).click();
    await expect(page.getByText("Test event queued")).toBeVisible();
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(1);
    expect(JSON.parse(received[0].body).type).toBe("webhook.test");
    // Signed as Standard Webhooks says, with the secret shown once.
    const { createHmac } = await import("node:crypto");
    const headers = received[0].headers;
    const key = Buffer.from(signingSecret.replace(/^whsec_/, ""), "base64");
    const expected = createHmac("sha256", key).update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${received[0].body}`).digest("base64");
    expect(String(headers["webhook-signature"]).split(" ")).toContain(`v1,${expected}`);

    // The log says it arrived; its page shows what was sent and what came back.
    await expect
      .poll(async () => {
        await page.reload();
        return page.getByTestId("delivery-status").first().textContent();
      }, { timeout: 10_000 })
      .toBe("delivered");
    await page.getByRole("link", { name: "webhook.test" }).first().click();
    await expect(page.getByTestId("delivery-attempt")).toContainText("HTTP 200");
    await expect(page.getByTestId("delivery-payload")).toContainText("webhook.test");
    await expect(page.getByTestId("delivery-attempt")).not.toContainText(expected);

    // Tidy: the demo organization keeps no endpoint from this journey.
    await page.getByRole("link", { name: "Endpoint" }).click();
    await expect(page.getByTestId("webhook-url")).toHaveText(url);
    await hydrated(page);
    await page.getByText("Remove…").click();
    await page.getByRole("button", { name: "Remove endpoint" }).click();
    await expect(page).toHaveURL(/\/settings\/webhooks$/);
  } finally {
    receiver.close();
  }
});

/** The Stripe stand-in, as the test server's account (the test command passes both). */
async function stripe(method: "GET" | "POST", path: string, form?: Record<string, string>) {
  const response = await fetch(`${process.env.STRIPE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${process.env.STRIPE_KEY}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: form ? new URLSearchParams(form).toString() : undefined,
  });
  expect(response.ok, `${method} ${path}: ${response.status}`).toBeTruthy();
  return response.json();
}

/** Moves the organization's Stripe test clock (named after its slug) `days` ahead and waits
 *  until Stripe has done what fell due. */
async function advanceClock(slug: string, days: number) {
  let clock: { id: string; frozen_time: number } | undefined;
  await expect
    .poll(async () => {
      const clocks = await stripe("GET", "/v1/test_helpers/test_clocks?limit=100");
      clock = clocks.data.find((c: { name: string }) => c.name === slug);
      return clock?.id;
    })
    .toBeTruthy();
  await stripe("POST", `/v1/test_helpers/test_clocks/${clock!.id}/advance`, { frozen_time: String(clock!.frozen_time + days * 86_400) });
  await expect.poll(async () => (await stripe("GET", `/v1/test_helpers/test_clocks/${clock!.id}`)).status).toBe("ready");
}

/** Fills Stripe's hosted card form. */
async function payOnStripe(page: Page, card: string, button: string) {
  await expect(page).toHaveURL(/\/checkout\//);
  await page.getByLabel("Card number").fill(card);
  await page.getByLabel("Expiry (MM / YY)").fill("12 / 34");
  await page.getByLabel("CVC").fill("123");
  await page.getByLabel("Name on card").fill("Pat Payer");
  await page.getByRole("button", { name: button }).click();
}

/** Reloads the billing page until `check` passes (Stripe's webhook is on its way). */
async function eventually(page: Page, check: () => Promise<void>) {
  await expect(async () => {
    await page.reload();
    await check();
  }).toPass({ timeout: 30_000 });
}

test("an owner upgrades with a test card, gets the invoice as a PDF, fixes a failing card; a viewer has no billing", async ({ page, browser }) => {
  const id = unique();
  const slug = `billing-${id}`;
  await signUpConfirmed(page, `payer-${id}@example.com`, "Pat Payer");
  await page.getByRole("link", { name: "Create an organization" }).click();
  await hydrated(page);
  await page.getByLabel("Organization name").fill(`Billing ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));

  // A new organization is on a trial of Team, without a card.
  await page.getByRole("link", { name: "Billing" }).click();
  await expect(page.getByTestId("billing-badge")).toHaveText("Trial");
  await expect(page.getByTestId("billing-card")).toHaveText("none on file");
  await hydrated(page);

  // The Owner chooses Business and adds a card on Stripe's page; it is charged when the trial ends.
  await page.getByRole("button", { name: "Choose Business monthly" }).click();
  await payOnStripe(page, "4242 4242 4242 4242", "Save card");
  await expect(page).toHaveURL(new RegExp(`/t/${slug}/settings/billing\\?checkout=`));
  await eventually(page, async () => {
    await expect(page.getByTestId("billing-card")).toContainText("Visa •••• 4242");
    await expect(page.getByTestId("billing-status").getByRole("heading", { name: /Business/ })).toBeVisible();
  });
  await advanceClock(slug, 15);
  await eventually(page, async () => {
    await expect(page.getByTestId("billing-badge")).toHaveText("Active");
    await expect(page.getByTestId("invoice-row").filter({ hasText: "Paid" }).filter({ hasText: "$114.00" })).toHaveCount(1);
  });

  // Its PDF, made by Tessera: the organization, the amount and the lines.
  const download = page.waitForEvent("download");
  await page.getByTestId("invoice-row").filter({ hasText: "$114.00" }).getByRole("link", { name: /Download/ }).click();
  const pdf = await (await download).path();
  const { execFileSync } = await import("node:child_process");
  const text = execFileSync("pdftotext", ["-layout", pdf, "-"]).toString();
  expect(text).toContain(`Billing ${id}`);
  expect(text).toContain("$114.00");
  expect(text).toMatch(/Business/);
  expect(text).toContain("Paid");

  // A card that fails: the renewal fails, and everyone sees the banner; the Owner can fix it.
  await page.getByRole("button", { name: "Replace card" }).click();
  await payOnStripe(page, "4000 0000 0000 0341", "Save card");
  await eventually(page, async () => expect(page.getByTestId("billing-card")).toContainText("0341"));
  await advanceClock(slug, 32);
  await eventually(page, async () => expect(page.getByTestId("billing-banner")).toContainText("A payment for"));
  await page.getByTestId("billing-banner").getByRole("link", { name: "Fix payment" }).click();
  await hydrated(page);
  await page.getByTestId("billing-status").getByRole("button", { name: "Fix payment" }).click();
  await payOnStripe(page, "4242 4242 4242 4242", "Save card");
  await eventually(page, async () => {
    await expect(page.getByTestId("billing-banner")).toHaveCount(0);
    await expect(page.getByTestId("billing-badge")).toHaveText("Active");
  });

  // Business includes audit log export: the Owner downloads their billing history as CSV.
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("link", { name: "Check integrity" }).click();
  await expect(page.getByTestId("audit-integrity")).toContainText("Integrity: verified");
  // (Retried: the form can be rendered again as the integrity answer arrives, taking the typing.)
  await expect(async () => {
    await page.getByLabel("Action").fill("billing");
    await page.getByRole("button", { name: "Filter" }).click();
    await expect(page).toHaveURL(/action=billing/, { timeout: 2_000 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByTestId("audit-event").first()).toContainText("billing.");
  const exported = page.waitForEvent("download");
  await page.getByTestId("audit-export-csv").click();
  const { readFileSync } = await import("node:fs");
  const csv = parseCsv(readFileSync(await (await exported).path(), "utf8"));
  expect(csv[0].slice(0, 3)).toEqual(["id", "occurred_at", "action"]);
  const rows = csv.slice(1);
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.every((r) => r[2].startsWith("billing."))).toBe(true);
  expect(rows.map((r) => r[2])).toContain("billing.checkout_started");
  expect(rows.map((r) => r[2])).toContain("billing.state_changed");

  // A Viewer has no billing link, and the page refuses them.
  const viewer = await (await browser.newContext()).newPage();
  await logIn(viewer, "viewer@acme.test", "tessera-demo");
  await viewer.goto("/t/acme");
  await expect(viewer.getByRole("link", { name: "Billing" })).toHaveCount(0);
  const refused = await viewer.goto("/t/acme/settings/billing");
  expect([403, 404]).toContain(refused!.status());
});

/** `page` (an Owner or Admin of `slug`, on its members page) invites `email` as `role`; they
 *  create their account from the emailed link in a browser of their own and join. Returns
 *  their page, signed in, in the organization. */
async function inviteAndJoin(page: Page, browser: import("@playwright/test").Browser, slug: string, email: string, role: string): Promise<Page> {
  await page.goto(`/t/${slug}/members`);
  await hydrated(page);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Role", { exact: true }).selectOption(role);
  const sent = new Date(Date.now() - 1000);
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByTestId("invitation-sent")).toContainText(`Invitation sent to ${email}`);
  const invitee = await (await browser.newContext()).newPage();
  await invitee.goto(await emailedLink(invitee, email, "/invite?token=", sent));
  await hydrated(invitee);
  await invitee.getByRole("link", { name: "Create an account" }).click();
  await hydrated(invitee);
  await invitee.getByLabel("Password").fill(PASSWORD);
  await invitee.getByRole("button", { name: "Create account" }).click();
  await expect(invitee).toHaveURL(/\/invite\?token=/);
  await hydrated(invitee);
  await invitee.getByRole("button", { name: "Accept and join" }).click();
  await expect(invitee).toHaveURL(new RegExp(`/t/${slug}$`));
  return invitee;
}

/** The project names `page` sees in the organization's list, freshly loaded. */
async function projectNames(page: Page, slug: string): Promise<string[]> {
  await page.goto(`/t/${slug}/projects`);
  return page.getByTestId("project-row").locator("a").allTextContents();
}

test("an admin restricts a project to one member, another member loses it at once, and the audit log shows who did what", async ({ page, browser }) => {
  const id = unique();
  const slug = `access-${id}`;
  // A founder on Business (audit log export), with an Admin and two Members.
  await signUpConfirmed(page, `founder-${id}@example.com`, "Fran Founder");
  await page.getByRole("link", { name: "Create an organization" }).click();
  await hydrated(page);
  await page.getByLabel("Organization name").fill(`Access ${id}`);
  await page.getByLabel("URL name").fill(slug);
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page).toHaveURL(new RegExp(`/t/${slug}$`));
  await page.goto(`/t/${slug}/settings/billing`);
  await hydrated(page);
  await page.getByRole("button", { name: "Choose Business monthly" }).click();
  await payOnStripe(page, "4242 4242 4242 4242", "Save card");
  await eventually(page, async () => {
    await expect(page.getByTestId("billing-status").getByRole("heading", { name: /Business/ })).toBeVisible();
  });
  const [adaEmail, beaEmail, calEmail] = [`ada-${id}@example.com`, `bea-${id}@example.com`, `cal-${id}@example.com`];
  const ada = await inviteAndJoin(page, browser, slug, adaEmail, "admin");
  const bea = await inviteAndJoin(page, browser, slug, beaEmail, "member");
  const cal = await inviteAndJoin(page, browser, slug, calEmail, "member");

  // Ada makes a project for the whole organization: both Members see it.
  await ada.goto(`/t/${slug}/projects/new`);
  await hydrated(ada);
  await ada.getByLabel("Project name").fill("Roadmap");
  await ada.getByRole("button", { name: "Create project" }).click();
  await expect(ada.getByTestId("project-name")).toHaveText("Roadmap");
  expect(await projectNames(cal, slug)).toContain("Roadmap");

  // She restricts it and gives Bea access as an editor.
  await hydrated(ada);
  const access = ada.getByTestId("project-access");
  await expect(access.getByTestId("visibility")).toContainText("Everyone in the organization");
  await access.getByLabel("Who can see it").selectOption("restricted");
  await Promise.all([ada.waitForResponse((r) => r.url().includes("set_project_visibility")), access.getByRole("button", { name: "Save" }).click()]);
  await expect(access.getByTestId("visibility")).toContainText("Restricted");
  await access.getByLabel("Member or group").selectOption({ label: `${beaEmail} (${beaEmail})` });
  await access.getByLabel("Project role").selectOption("editor");
  await Promise.all([ada.waitForResponse((r) => r.url().includes("share_project")), access.getByRole("button", { name: "Give access" }).click()]);
  await expect(access.getByTestId("grant-row").filter({ hasText: beaEmail })).toBeVisible();

  // Cal loses it from his list at once; Bea has it, marked restricted, and writes in it.
  expect(await projectNames(cal, slug)).not.toContain("Roadmap");
  expect(await projectNames(bea, slug)).toContain("Roadmap");
  const row = bea.getByTestId("project-row").filter({ hasText: "Roadmap" });
  await expect(row.getByTestId("restricted-badge")).toBeVisible();
  await row.getByRole("link", { name: "Roadmap" }).click();
  await expect(bea.getByTestId("project-name")).toHaveText("Roadmap");
  await hydrated(bea);
  await bea.getByRole("link", { name: "New document" }).click();
  await hydrated(bea);
  await bea.getByLabel("Title").fill("Q3 themes");
  await bea.getByRole("button", { name: "Save document" }).click();
  await expect(bea.getByRole("heading", { name: "Q3 themes" })).toBeVisible();
  // Cal can't reach it by its address either.
  const refused = await cal.goto(bea.url().replace(/\/documents\/.*$/, ""));
  expect(refused?.status()).toBe(404);

  // Ada filters the audit log to what Bea did and downloads it.
  await ada.goto(`/t/${slug}/settings/audit`);
  await hydrated(ada);
  await expect(async () => {
    await ada.getByLabel("Who").selectOption({ label: beaEmail });
    await ada.getByRole("button", { name: "Filter" }).click();
    await expect(ada).toHaveURL(/actor=/, { timeout: 2_000 });
  }).toPass({ timeout: 15_000 });
  await expect(ada.getByTestId("audit-event").filter({ hasText: "document.created" })).toHaveCount(1);
  const exported = ada.waitForEvent("download");
  await ada.getByTestId("audit-export-csv").click();
  const { readFileSync } = await import("node:fs");
  const csv = parseCsv(readFileSync(await (await exported).path(), "utf8"));
  const header = csv[0];
  const rows = csv.slice(1);
  const column = (name: string) => header.indexOf(name);
  expect(rows.length).toBeGreaterThan(0);
  expect(rows.every((r) => r[column("actor_name")] === beaEmail)).toBe(true);
  expect(rows.map((r) => r[column("action")])).toContain("document.created");

  // Her own sharing is on the record too.
  await ada.goto(`/t/${slug}/settings/audit?action=project`);
  await expect(ada.getByTestId("audit-event").filter({ hasText: "project.access_granted" })).toHaveCount(1);
  await expect(ada.getByTestId("audit-event").filter({ hasText: "project.visibility_changed" })).toHaveCount(1);
});
