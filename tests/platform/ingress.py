"""nginx configured from a rendered Ingress: host, TLS, basic auth and body-size/timeout annotations.

The stand-in for ingress-nginx in the boot test; cert-manager's certificate is a self-signed one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def nginx_conf(ingress: dict, conf_dir: Path, service_port: int) -> str:
    notes = ingress["metadata"]["annotations"]
    rule = ingress["spec"]["rules"][0]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    cert, key = conf_dir / "tls.crt", conf_dir / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    f"/CN={rule['host']}", "-addext", f"subjectAltName=DNS:{rule['host']}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    auth = ""
    if notes.get("nginx.ingress.kubernetes.io/auth-type") == "basic":
        auth = (f'auth_basic "{notes["nginx.ingress.kubernetes.io/auth-realm"]}";\n'
                f"      auth_basic_user_file {conf_dir / 'htpasswd'};")
    tmp = conf_dir / "tmp"
    redirect = f"server {{ listen 80; server_name {rule['host']}; return 308 https://$host$request_uri; }}"
    return f"""
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  {redirect if ingress["spec"].get("tls") else ""}
  server {{
    listen {"443 ssl" if ingress["spec"].get("tls") else "80"}; server_name {rule['host']};
    ssl_certificate {cert}; ssl_certificate_key {key};
    client_max_body_size {notes['nginx.ingress.kubernetes.io/proxy-body-size']};
    location / {{
      {auth}
      proxy_read_timeout {notes['nginx.ingress.kubernetes.io/proxy-read-timeout']}s;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_pass http://{backend['name']}:{service_port};
    }}
  }}
}}
"""
