"""Exports of a ledger's current (filtered) view as XLSX or CSV: masked exactly as on
screen, with the ledger's name, the time of export and the time of the data on top."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from shared.health import HEALTH_KIT_TZ
from shared.healthkit import CODE_STATUS_LABELS, TEST_RESULT_LABELS, VACCINATION_LABELS
from shared.ledger_filters import is_phone_tail

ID_TYPE_LABELS = {
    "resident_id": "居民身份证",
    "passport": "护照",
    "hk_macao_permit": "港澳居民来往内地通行证",
    "taiwan_permit": "台湾居民来往大陆通行证",
}
COLUMNS = ["姓名", "证件类型", "证件号码", "手机号", "健康码", "弹窗", "核酸天数", "核酸结果", "疫苗接种",
           "是否异常", "异常原因", "加入时间", "数据更新时间", "数据是否过期"]


def _local(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(HEALTH_KIT_TZ).strftime("%Y-%m-%d %H:%M")


def row_of(item: dict) -> list:
    return [
        item.get("name", ""),
        ID_TYPE_LABELS.get(item.get("id_type"), item.get("id_type") or ""),
        item.get("id_number") or "",
        item.get("phone") or "",
        CODE_STATUS_LABELS.get(item.get("code_status"), "未知"),
        item.get("popup") or "",
        "" if item.get("test_days") is None else item["test_days"],
        TEST_RESULT_LABELS.get(item.get("test_result"), "无记录"),
        VACCINATION_LABELS.get(item.get("vaccination"), ""),
        "是" if item.get("abnormal") else "否",
        "、".join(r["label"] for r in item.get("abnormal_reasons", [])),
        _local(item.get("joined_at")),
        _local(item.get("synced_at")),
        f"是（自 {_local(item.get('stale_since'))}）" if item.get("stale") else "否",
    ]


#: the list's filters in the words of the page's chips (ui.js)
TEST_AGE_LABELS = {"h24": "24小时内", "h48": "24–48小时", "h72": "48–72小时", "older": "超过72小时",
                   "none": "无核酸记录", "pending": "待出结果"}
SORT_LABELS = {"name": "姓名", "test_days": "核酸天数", "joined_at": "加入时间"}
FILTER_WORDS = {
    "abnormal": lambda v: "只看异常" if v else "只看正常",
    "code_status": lambda v: f"健康码：{CODE_STATUS_LABELS.get(v, '未知')}",
    "test_age": lambda v: f"核酸：{TEST_AGE_LABELS.get(v, v)}",
    "test_older_than_hours": lambda v: f"核酸超过 {v} 小时",
    "no_test": lambda v: "无核酸记录" if v else "有核酸记录",
    "vaccination": lambda v: f"疫苗：{VACCINATION_LABELS.get(v, v)}",
    "joined_from": lambda v: f"加入日期自 {v}",
    "joined_to": lambda v: f"加入日期至 {v}",
    "q": lambda v: f"手机号后4位为“{v}”" if is_phone_tail(v) else f"姓名含“{v}”",
}


def described_in_words(filters: dict) -> str:
    """The filters as the admin chose them on the page ("健康码：集中观察，按姓名升序")."""
    words = [FILTER_WORDS[k](v) for k, v in filters.items() if k in FILTER_WORDS]
    if filters.get("sort") in SORT_LABELS and filters["sort"] != "joined_at":
        words.append(f"按{SORT_LABELS[filters['sort']]}{'降序' if filters.get('order') == 'desc' else '升序'}")
    return "，".join(words) or "全部成员"


def filename(org_name: str, kind: str, at: datetime | None = None) -> str:
    """团体簿名-成员-export time in Beijing time, as the page would name it."""
    at = (at or datetime.now(timezone.utc)).astimezone(HEALTH_KIT_TZ)
    safe = "".join(ch for ch in org_name if ch not in '\\/:*?"<>|').strip() or "团体簿"
    return f"{safe}-成员-{at:%Y%m%d-%H%M}.{kind}"


def header_lines(org_name: str, items: list[dict], filters: dict) -> list[list]:
    exported = datetime.now(timezone.utc).isoformat()
    synced = [i["synced_at"] for i in items if i.get("synced_at")]
    data_time = min(synced) if synced else None
    described = described_in_words(filters)
    return [
        [f"团体簿：{org_name}"],
        [f"导出时间：{_local(exported)}"],
        [f"数据时间：{_local(data_time) or '暂无'}（各成员的数据更新时间见表内）"],
        [f"筛选：{described}；共 {len(items)} 人"],
        [],
    ]


def to_xlsx(org_name: str, items: list[dict], filters: dict) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("成员")
    lines = header_lines(org_name, items, filters)
    # the column headers stay in view and carry Excel's filter buttons, under the title
    header_row = len(lines) + 1
    sheet.freeze_panes = f"A{header_row + 1}"
    sheet.auto_filter.ref = f"A{header_row}:{get_column_letter(len(COLUMNS))}{header_row + len(items)}"
    for line in lines:
        sheet.append(line)
    sheet.append(COLUMNS)
    for item in items:
        sheet.append(row_of(item))
    buf = io.BytesIO()
    workbook.save(buf)
    return buf.getvalue()


def to_csv(org_name: str, items: list[dict], filters: dict) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    for line in header_lines(org_name, items, filters):
        writer.writerow(line)
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow(row_of(item))
    # a BOM so spreadsheet programs read the Chinese as UTF-8
    return ("\ufeff" + buf.getvalue()).encode("utf-8")

