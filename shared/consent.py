"""What a person agrees to when joining a ledger: health data is sensitive personal
information and needs its own, informed consent. The version is stored with each
membership; changing the text means a new version."""

CONSENT_VERSION = "2026-12-03.1"

CONSENT_TEXT = (
    "加入后，本团体簿的管理员可以看到：您的姓名；脱敏后的证件号和手机号；"
    "您在健康宝中的健康码状态、最近一次核酸检测的天数和结果、疫苗接种情况。"
    "我们只收集姓名、证件类型及号码、手机号，仅用于与健康宝比对并向本机构展示上述防疫信息，"
    "数据加密存储、脱敏展示。您可以随时在“我的”中退出，退出后您的证件号、手机号和健康信息立即删除，"
    "管理员只能看到您的姓名和退出时间；"
    "机构关闭团体簿时，全部成员数据随之销毁。"
)
