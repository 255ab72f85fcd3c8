"""The web page in a real headless browser (Debian's chromium through Selenium): choose a user,
see the history and the funnel, add a watch and see the list change."""

import shutil

import pytest

from recfunnel.index.candidates import SOURCES
from server_processes import free_port, start

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="chromium and chromium-driver are not installed (.ci/run installs them)")


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def texts(driver, css):
    """What a person reads in the matching elements, in one read (the page re-renders lists)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)", css)


def test_choose_a_user_watch_an_item_and_see_the_list_change(browser, tmp_path,
                                                              small_funnel_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    served = tmp_path / "served"
    shutil.copytree(small_funnel_dir, served)
    port = free_port()
    proc = start(served, port)
    try:
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 20)
        user = browser.find_element(By.ID, "user")
        user.clear()
        user.send_keys("3")
        browser.find_element(By.ID, "show").click()
        wait.until(lambda d: d.execute_script("return document.body.dataset.shown") == "3")
        assert len(texts(browser, "#history > li")) > 0 and len(texts(browser, "#ranked > li")) > 0
        final = texts(browser, "#final > li")
        assert len(final) == 10
        # each final item shows its title and id, and why it is there
        assert all("[" in line and any(source in line for source in SOURCES) for line in final)
        top_id = final[0].split("[", 1)[1].split("]", 1)[0]

        browser.find_element(By.ID, "item").send_keys(top_id)
        browser.find_element(By.ID, "watch").click()
        wait.until(lambda d: f"stored: watched {top_id}" in d.find_element(By.ID, "status").text)
        assert texts(browser, "#history > li")[0].endswith(f"[{top_id}]")
        after = texts(browser, "#final > li")
        assert len(after) == 10 and not any(f"[{top_id}]" in line for line in after)

        browser.find_element(By.ID, "item").clear()
        browser.find_element(By.ID, "item").send_keys("no-such-item")
        browser.find_element(By.ID, "watch").click()
        wait.until(lambda d: "error: unknown item" in d.find_element(By.ID, "status").text)
    finally:
        proc.kill()
        proc.wait()
