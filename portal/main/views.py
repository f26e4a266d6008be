from portal.main import bp


@bp.get("/")
def home():
    return "Collection CRM"
